//! Pacing by reservation (the generic cell rate algorithm): each request reserves the next free moment of its
//! account's schedule, and waits until then. ResMan's limits are per account, so each account has one schedule that
//! every poll worker shares (it lives in the store). Reserving, not retrying: many waiting workers never stampede the
//! store, and none waits longer than its place in line.

use chrono::{DateTime, Duration, Utc};

/// The delay, in seconds, by which one request may reach ResMan later than another sent on schedule, allowed for
/// by [`Rate::at_most_per_second`].
pub const JITTER: f64 = 0.25;

/// How fast an account may be called: on average `per_second`, with up to `burst` requests at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// At most `cap` requests in any one second as ResMan receives them (`cap` at least 2): one at a time, spaced so
    /// that any stretch of `t` seconds holds at most `1 + (cap - 1) * t / (1 + JITTER)` requests as sent. A request
    /// that leaves up to [`JITTER`] seconds late (a busy machine, a slow connection) then still leaves every second
    /// of arrivals within `cap`.
    pub fn at_most_per_second(cap: u32) -> Option<Self> {
        (cap >= 2).then(|| Self {
            per_second: f64::from(cap - 1) / (1.0 + JITTER),
            burst: 1.0,
        })
    }

    /// A rate of at least one request a minute, and a burst of at least one request.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second.is_finite() && per_second >= 1.0 / 60.0 && burst >= 1).then_some(Self {
            per_second,
            burst: f64::from(burst),
        })
    }

    fn interval(self) -> Duration {
        Duration::microseconds((1_000_000.0 / self.per_second).ceil() as i64)
    }
}

/// An account's schedule as stored: the theoretical moment the next request is due (`None`: never called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub next_due: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Reserves a moment for one request asked for at `now`: the schedule after it, and when the request may go
    /// (`now` or later).
    pub fn reserve(self, rate: Rate, now: DateTime<Utc>) -> (Self, DateTime<Utc>) {
        let interval = rate.interval();
        let tolerance =
            Duration::microseconds(((rate.burst - 1.0) * interval.num_microseconds().unwrap_or(0) as f64) as i64);
        let due = self.next_due.unwrap_or(now);
        let go = (due - tolerance).max(now);
        let next_due = due.max(go) + interval;
        (
            Self {
                next_due: Some(next_due),
            },
            go,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// Reserves for requests asked at `asks`, in order: when each goes.
    fn goes(rate: Rate, asks: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
        let mut schedule = Schedule { next_due: None };
        asks.iter()
            .map(|now| {
                let (next, go) = schedule.reserve(rate, *now);
                schedule = next;
                go
            })
            .collect()
    }

    #[test]
    fn requests_asked_at_once_go_one_interval_apart_after_the_burst() {
        let rate = Rate::new(2.0, 3).unwrap();
        let at = goes(rate, &[t0(); 5]);
        let ms: Vec<i64> = at.iter().map(|t| (*t - t0()).num_milliseconds()).collect();
        assert_eq!(ms, vec![0, 0, 0, 500, 1000]);
    }

    #[test]
    fn an_idle_account_is_not_owed_a_backlog() {
        let rate = Rate::new(1.0, 2).unwrap();
        let later = t0() + Duration::hours(1);
        let at = goes(rate, &[t0(), later, later, later]);
        let ms: Vec<i64> = at.iter().map(|t| (*t - t0()).num_milliseconds()).collect();
        assert_eq!(
            ms,
            vec![0, 3_600_000, 3_600_000, 3_601_000],
            "two at once after an hour, not 3600"
        );
    }

    #[test]
    fn a_cap_per_second_holds_in_every_second() {
        let rate = Rate::at_most_per_second(5).unwrap();
        // Forty requests asked within ten milliseconds of each other, as forty waiting workers would.
        let asks: Vec<DateTime<Utc>> = (0..40).map(|n| t0() + Duration::microseconds(n * 250)).collect();
        let at = goes(rate, &asks);
        for (i, first) in at.iter().enumerate() {
            let within = at[i..]
                .iter()
                // Even with the first of them arriving a quarter of a second late.
                .take_while(|t| **t - *first < Duration::milliseconds(1250))
                .count();
            assert!(within <= 5, "{within} within 1.25 s of {first}");
        }
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "first asked, first served");
        assert!(Rate::at_most_per_second(1).is_none());
    }

    #[test]
    fn rates_are_sane() {
        assert!(Rate::new(0.0, 1).is_none());
        assert!(Rate::new(f64::NAN, 1).is_none());
        assert!(Rate::new(5.0, 0).is_none());
    }

    proptest! {
        /// Whatever the pattern of asks, the requests go no faster than `burst` plus `rate` times any stretch, and
        /// none goes before it was asked.
        #[test]
        fn requests_never_go_faster_than_burst_plus_rate_times_time(
            per_second in 1u32..20,
            burst in 1u32..10,
            gaps in proptest::collection::vec(0i64..400, 1..200),
        ) {
            let rate = Rate::new(f64::from(per_second), burst).unwrap();
            let mut now = t0();
            let asks: Vec<DateTime<Utc>> = gaps.iter().map(|g| { now += Duration::milliseconds(*g); now }).collect();
            let at = goes(rate, &asks);
            for (ask, go) in asks.iter().zip(&at) {
                prop_assert!(go >= ask);
            }
            for i in 0..at.len() {
                for j in i..at.len() {
                    let seconds = (at[j] - at[i]).num_microseconds().unwrap() as f64 / 1e6;
                    prop_assert!(((j - i + 1) as f64) <= rate.burst + seconds * rate.per_second + 1e-6);
                }
            }
        }
    }
}
