//! A bounded, per-instance record of submissions by idempotency key, so a repeated submit
//! gets the first answer and writes nothing new. A second submit that arrives while the
//! first is still waiting for Kafka waits for the first's outcome instead of racing it.
//!
//! It does not survive a restart and is not shared between instances; the processor's own
//! idempotency (an order already final is never processed again) covers what this misses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What the caller should do with a submission.
pub enum Claim<A> {
    /// First time seen: produce it, then [`ClaimGuard::complete`].
    New(ClaimGuard<A>),
    /// Already answered: send this answer again.
    Replay(A),
    /// The key was used before for a different request.
    Conflict,
}

enum Entry<A> {
    InFlight {
        fingerprint: u64,
        done: watch::Receiver<bool>,
    },
    Done {
        fingerprint: u64,
        answer: A,
    },
}

struct Inner<A> {
    entries: HashMap<String, Entry<A>>,
    /// Answered keys, oldest first, for eviction.
    answered: VecDeque<String>,
}

/// The record. Cheap to clone.
pub struct IdempotencyStore<A> {
    inner: Arc<Mutex<Inner<A>>>,
    capacity: usize,
}

impl<A> Clone for IdempotencyStore<A> {
    fn clone(&self) -> Self {
        IdempotencyStore {
            inner: self.inner.clone(),
            capacity: self.capacity,
        }
    }
}

/// Held while a first submission is produced. Dropping it without `complete` (a failure)
/// forgets the key so that a retry can try again.
pub struct ClaimGuard<A> {
    store: IdempotencyStore<A>,
    key: String,
    fingerprint: u64,
    done: Option<watch::Sender<bool>>,
}

impl<A: Clone> IdempotencyStore<A> {
    /// A record remembering at most `capacity` answers.
    pub fn new(capacity: usize) -> Self {
        IdempotencyStore {
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                answered: VecDeque::new(),
            })),
            capacity: capacity.max(1),
        }
    }

    /// Claims `key` for a request with this `fingerprint`, waiting while another request
    /// with the same key is in flight.
    pub async fn claim(&self, key: String, fingerprint: u64) -> Claim<A> {
        loop {
            let mut waiting = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                match inner.entries.get(&key) {
                    Some(Entry::Done {
                        fingerprint: f,
                        answer,
                    }) => {
                        return if *f == fingerprint {
                            Claim::Replay(answer.clone())
                        } else {
                            Claim::Conflict
                        };
                    }
                    Some(Entry::InFlight { fingerprint: f, .. }) if *f != fingerprint => {
                        return Claim::Conflict;
                    }
                    Some(Entry::InFlight { done, .. }) => done.clone(),
                    None => {
                        let (tx, rx) = watch::channel(false);
                        inner.entries.insert(
                            key.clone(),
                            Entry::InFlight {
                                fingerprint,
                                done: rx,
                            },
                        );
                        return Claim::New(ClaimGuard {
                            store: self.clone(),
                            key,
                            fingerprint,
                            done: Some(tx),
                        });
                    }
                }
            };
            // Woken when the first request completes or gives up; then look again.
            let _ = waiting.changed().await;
        }
    }

    fn finish(&self, key: &str, fingerprint: u64, answer: Option<A>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Some(answer) => {
                inner.entries.insert(
                    key.to_string(),
                    Entry::Done {
                        fingerprint,
                        answer,
                    },
                );
                inner.answered.push_back(key.to_string());
                while inner.answered.len() > self.capacity {
                    if let Some(old) = inner.answered.pop_front() {
                        inner.entries.remove(&old);
                    }
                }
            }
            None => {
                inner.entries.remove(key);
            }
        }
    }

    /// Keys remembered now, answered or in flight.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<A: Clone> ClaimGuard<A> {
    /// Records the answer for later repeats and wakes waiting duplicates.
    pub fn complete(mut self, answer: A) {
        self.store.finish(&self.key, self.fingerprint, Some(answer));
        if let Some(tx) = self.done.take() {
            let _ = tx.send(true);
        }
    }
}

impl<A> Drop for ClaimGuard<A> {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let mut inner = self.store.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.entries.remove(&self.key);
            drop(inner);
            let _ = tx.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_the_first_answer_and_refuses_another_body() {
        let store = IdempotencyStore::new(10);
        let Claim::New(guard) = store.claim("k".into(), 1).await else {
            panic!("first is new")
        };
        guard.complete("answer");
        assert!(matches!(
            store.claim("k".into(), 1).await,
            Claim::Replay("answer")
        ));
        assert!(matches!(store.claim("k".into(), 2).await, Claim::Conflict));
    }

    #[tokio::test]
    async fn a_failed_first_attempt_frees_the_key() {
        let store = IdempotencyStore::<u8>::new(10);
        let Claim::New(guard) = store.claim("k".into(), 1).await else {
            panic!()
        };
        drop(guard);
        assert!(matches!(store.claim("k".into(), 1).await, Claim::New(_)));
    }

    #[tokio::test]
    async fn a_concurrent_duplicate_waits_for_the_first() {
        let store = IdempotencyStore::new(10);
        let Claim::New(guard) = store.claim("k".into(), 1).await else {
            panic!()
        };
        let other = store.clone();
        let waiter =
            tokio::spawn(
                async move { matches!(other.claim("k".into(), 1).await, Claim::Replay(7)) },
            );
        tokio::task::yield_now().await;
        guard.complete(7);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn oldest_answers_are_forgotten_past_capacity() {
        let store = IdempotencyStore::new(2);
        for key in ["a", "b", "c"] {
            let Claim::New(guard) = store.claim(key.into(), 1).await else {
                panic!()
            };
            guard.complete(());
        }
        assert_eq!(store.len(), 2);
        assert!(matches!(store.claim("a".into(), 1).await, Claim::New(_)));
    }
}
