//! A token bucket: at most `burst` requests at once, and `per_second` on average after that. ResMan's limits are
//! per account, so each account has one bucket that every poll worker shares (its state lives in the store).

use chrono::{DateTime, Duration, Utc};

/// How fast an account may be called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// A rate of at least one request a minute, and a burst of at least one request.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second.is_finite() && per_second >= 1.0 / 60.0 && burst >= 1).then_some(Self {
            per_second,
            burst: f64::from(burst),
        })
    }
}

/// A bucket as stored: how many tokens it held at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at: DateTime<Utc>,
}

impl Bucket {
    /// A bucket never seen: full.
    pub fn full(rate: Rate, now: DateTime<Utc>) -> Self {
        Self {
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes one token at `now`: the bucket after it, or how long to wait until one is there. Tokens come back at
    /// `rate.per_second` up to `rate.burst`; a clock that went backwards refills nothing.
    pub fn take(self, rate: Rate, now: DateTime<Utc>) -> Result<Self, Duration> {
        let elapsed = (now - self.at).num_milliseconds().max(0) as f64 / 1000.0;
        let tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        if tokens >= 1.0 {
            Ok(Self {
                tokens: tokens - 1.0,
                at: now.max(self.at),
            })
        } else {
            let seconds = (1.0 - tokens) / rate.per_second;
            Err(Duration::milliseconds((seconds * 1000.0).ceil() as i64).max(Duration::milliseconds(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_makes_the_caller_wait_for_the_next_token() {
        let rate = Rate::new(2.0, 3).unwrap();
        let mut bucket = Bucket::full(rate, t0());
        for _ in 0..3 {
            bucket = bucket.take(rate, t0()).unwrap();
        }
        assert_eq!(bucket.take(rate, t0()).unwrap_err(), Duration::milliseconds(500));
        let later = t0() + Duration::milliseconds(500);
        let bucket = bucket.take(rate, later).unwrap();
        assert!(bucket.take(rate, later).is_err());
    }

    #[test]
    fn a_bucket_fills_no_higher_than_its_burst_and_a_clock_going_back_refills_nothing() {
        let rate = Rate::new(1.0, 2).unwrap();
        let bucket = Bucket::full(rate, t0()).take(rate, t0()).unwrap();
        let much_later = t0() + Duration::hours(1);
        let b = bucket.take(rate, much_later).unwrap().take(rate, much_later).unwrap();
        assert!(b.take(rate, much_later).is_err(), "two at once, not 3600");
        let empty = Bucket { tokens: 0.0, at: t0() };
        assert!(empty.take(rate, t0() - Duration::seconds(30)).is_err());
    }

    #[test]
    fn rates_are_sane() {
        assert!(Rate::new(0.0, 1).is_none());
        assert!(Rate::new(f64::NAN, 1).is_none());
        assert!(Rate::new(5.0, 0).is_none());
    }

    proptest! {
        /// Whatever the pattern of takes over a stretch of time, no more than `burst + rate x seconds` succeed.
        #[test]
        fn takes_never_exceed_burst_plus_rate_times_time(
            per_second in 1u32..20,
            burst in 1u32..10,
            gaps in proptest::collection::vec(0i64..400, 1..200),
        ) {
            let rate = Rate::new(f64::from(per_second), burst).unwrap();
            let mut bucket = Bucket::full(rate, t0());
            let mut now = t0();
            let mut taken = 0u32;
            for gap in gaps {
                now += Duration::milliseconds(gap);
                if let Ok(next) = bucket.take(rate, now) {
                    bucket = next;
                    taken += 1;
                }
            }
            let seconds = (now - t0()).num_milliseconds() as f64 / 1000.0;
            prop_assert!(f64::from(taken) <= rate.burst + seconds * rate.per_second + 1e-9);
        }
    }
}
