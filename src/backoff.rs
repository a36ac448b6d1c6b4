//! [`Backoff`]: the exponential delay between retries of every loop that waits for Kafka (or
//! the network) to come back, with a sleep that ends early at shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A delay that starts at `first` and doubles after each wait, up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// The delay the next wait will take.
    pub fn delay(&self) -> Duration {
        self.next
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Returns the current delay and doubles the next one.
    pub fn advance(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Sleeps for the current delay and doubles the next one. Returns false, at once, when
    /// `shutdown` is cancelled first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        sleep_unless_cancelled(self.advance(), shutdown).await
    }
}

/// Sleeps for `duration`; false, at once, when `shutdown` is cancelled first.
pub async fn sleep_unless_cancelled(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(500));
        let delays: Vec<_> = (0..5).map(|_| backoff.advance()).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        backoff.reset();
        assert_eq!(backoff.delay(), ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        assert!(backoff.wait(&shutdown).await, "the full delay passes");
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        assert!(!backoff.wait(&shutdown).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
