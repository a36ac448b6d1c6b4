//! Rate limits: a token bucket (GCRA, from `governor`) per API key, and one per client
//! address for callers without a known key. A request costs one token and a bulk request one
//! per order it carries, so a limit holds in orders as well as in requests. Answers carry the
//! IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers):
//! `q` tokens per window of `w` seconds, `r` remaining, full again in `t` seconds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub use crate::config::access::RateLimitSettings;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;
type ByAddress =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// What a check allows: the quota and the tokens left, for the answer's headers.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    quota: Quota,
    remaining: u32,
}

/// Why a check refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Out of tokens: wait this long.
    Wait {
        /// Until the request would conform.
        wait: Duration,
        /// Most tokens held.
        burst: u32,
        /// Seconds for an empty bucket to fill.
        window_secs: u64,
    },
    /// The request costs more than the bucket ever holds (a bulk larger than the burst).
    OverBurst {
        /// Tokens it would cost.
        cost: u32,
        /// Most tokens held.
        burst: u32,
    },
}

/// One key's bucket, or none when limits are off.
#[derive(Debug)]
pub struct KeyLimiter(Option<(Direct, Quota)>);

impl KeyLimiter {
    /// A bucket with this quota.
    pub fn new(quota: Quota) -> Self {
        KeyLimiter(Some((
            RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            quota,
        )))
    }

    /// No limit.
    pub fn unlimited() -> Self {
        KeyLimiter(None)
    }

    /// Takes `cost` tokens, or refuses without taking any.
    pub fn check(&self, cost: u32) -> Result<Option<Allowance>, Refusal> {
        let (Some((limiter, quota)), Some(cost)) = (&self.0, NonZeroU32::new(cost)) else {
            return Ok(None);
        };
        let quota = *quota;
        match limiter.check_n(cost) {
            Ok(Ok(state)) => Ok(Some(Allowance {
                quota,
                remaining: state.remaining_burst_capacity(),
            })),
            Ok(Err(not_until)) => Err(wait(
                &quota,
                not_until.wait_time_from(limiter.clock().now()),
            )),
            Err(_) => Err(Refusal::OverBurst {
                cost: cost.get(),
                burst: quota.burst_size().get(),
            }),
        }
    }
}

/// The buckets of callers without a known key, by client address.
#[derive(Debug)]
pub struct AddressLimits {
    limiter: Option<ByAddress>,
    quota: Option<Quota>,
}

impl AddressLimits {
    /// Buckets with this quota, or none.
    pub fn new(quota: Option<Quota>) -> Self {
        AddressLimits {
            limiter: quota
                .map(|q| RateLimiter::dashmap(q).with_middleware::<StateInformationMiddleware>()),
            quota,
        }
    }

    /// Takes `cost` tokens from the address's bucket, or refuses without taking any.
    pub fn check(&self, address: IpAddr, cost: u32) -> Result<Option<Allowance>, Refusal> {
        let (Some(limiter), Some(quota), Some(cost)) =
            (&self.limiter, self.quota, NonZeroU32::new(cost))
        else {
            return Ok(None);
        };
        match limiter.check_key_n(&address, cost) {
            Ok(Ok(state)) => Ok(Some(Allowance {
                quota,
                remaining: state.remaining_burst_capacity(),
            })),
            Ok(Err(not_until)) => Err(wait(
                &quota,
                not_until.wait_time_from(limiter.clock().now()),
            )),
            Err(_) => Err(Refusal::OverBurst {
                cost: cost.get(),
                burst: quota.burst_size().get(),
            }),
        }
    }

    /// Forgets the buckets that are full again, so memory follows the callers of the last
    /// moments rather than every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Addresses with a bucket now.
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

fn wait(quota: &Quota, wait: Duration) -> Refusal {
    Refusal::Wait {
        wait,
        burst: quota.burst_size().get(),
        window_secs: window_secs(quota),
    }
}

fn window_secs(quota: &Quota) -> u64 {
    let full = quota.replenish_interval() * quota.burst_size().get();
    full.as_secs_f64().ceil().max(1.0) as u64
}

/// `RateLimit-Policy`.
pub const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const STATE: HeaderName = HeaderName::from_static("ratelimit");

impl Allowance {
    /// Adds `RateLimit-Policy` and `RateLimit` to an answer.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let burst = self.quota.burst_size().get();
        let empty = burst.saturating_sub(self.remaining);
        let refill = self.quota.replenish_interval() * empty;
        let reset = refill.as_secs_f64().ceil() as u64;
        write(
            headers,
            burst,
            window_secs(&self.quota),
            self.remaining,
            reset,
        );
    }
}

impl Refusal {
    /// Seconds to send as `Retry-After`, if waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::Wait { wait, .. } => Some(Duration::from_secs(
                wait.as_secs_f64().ceil().max(1.0) as u64,
            )),
            Refusal::OverBurst { .. } => None,
        }
    }

    /// Adds `RateLimit-Policy` and `RateLimit` (nothing left) to a refusal.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        if let Refusal::Wait {
            burst, window_secs, ..
        } = self
        {
            let reset = self.retry_after().map_or(1, |d| d.as_secs());
            write(headers, *burst, *window_secs, 0, reset);
        }
    }
}

fn write(headers: &mut HeaderMap, quota: u32, window: u64, remaining: u32, reset: u64) {
    if let Ok(policy) = HeaderValue::from_str(&format!("\"default\";q={quota};w={window}")) {
        headers.insert(POLICY, policy);
    }
    if let Ok(state) = HeaderValue::from_str(&format!("\"default\";r={remaining};t={reset}")) {
        headers.insert(STATE, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: u32, burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            per_second,
            burst,
            unauthenticated_per_second: 1,
            unauthenticated_burst: 1,
        }
    }

    #[test]
    fn a_bucket_spends_one_token_per_unit_of_cost_and_refuses_when_empty() {
        let limiter = KeyLimiter::new(settings(1, 5).quota(None, None).unwrap());
        let allowed = limiter.check(3).unwrap().unwrap();
        assert_eq!(allowed.remaining, 2);
        let Err(Refusal::Wait { wait, burst, .. }) = limiter.check(3) else {
            panic!("three more tokens than the two left must wait");
        };
        assert_eq!(burst, 5);
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        // The refused check took nothing: the two left are still there.
        assert_eq!(limiter.check(2).unwrap().unwrap().remaining, 0);
    }

    #[test]
    fn a_cost_over_the_burst_is_refused_as_never_possible() {
        let limiter = KeyLimiter::new(settings(100, 10).quota(None, None).unwrap());
        assert_eq!(
            limiter.check(11).unwrap_err(),
            Refusal::OverBurst {
                cost: 11,
                burst: 10
            }
        );
    }

    #[test]
    fn per_key_overrides_replace_the_defaults() {
        let quota = settings(1000, 2000).quota(Some(5), Some(7)).unwrap();
        assert_eq!(quota.burst_size().get(), 7);
        assert_eq!(quota.replenish_interval(), Duration::from_millis(200));
    }

    #[test]
    fn headers_state_the_policy_and_what_is_left() {
        let limiter = KeyLimiter::new(settings(10, 20).quota(None, None).unwrap());
        let mut headers = HeaderMap::new();
        limiter
            .check(5)
            .unwrap()
            .unwrap()
            .write_headers(&mut headers);
        assert_eq!(headers[POLICY], "\"default\";q=20;w=2");
        assert_eq!(headers[STATE], "\"default\";r=15;t=1");
    }

    #[test]
    fn addresses_have_separate_buckets() {
        let limits = AddressLimits::new(settings(1, 1).quota(None, None));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limits.check(a, 1).is_ok());
        assert!(limits.check(a, 1).is_err());
        assert!(limits.check(b, 1).is_ok());
        assert_eq!(limits.tracked(), 2);
    }
}
