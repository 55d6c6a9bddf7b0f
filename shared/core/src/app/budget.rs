//! The time an invocation has: Lambda stops a function at its deadline, so every piece of work is bounded by what
//! is left of it, less a margin to record the outcome.

/// What a queue consumer keeps back from its deadline to record its last outcome and answer.
pub const QUEUE_BATCH_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);
/// The least time worth starting a message with (one ResMan call or send may still be cut short: every step is
/// safe to repeat).
pub const QUEUE_BATCH_LEAST: std::time::Duration = std::time::Duration::from_secs(2);

/// The time an invocation has (its deadline, from the Lambda context), and what it keeps back: `margin` to record
/// outcomes and answer after the last message, and `least` below which a message is not started at all.
#[derive(Debug, Clone, Copy)]
pub struct TimeBudget {
    pub deadline: tokio::time::Instant,
    pub margin: std::time::Duration,
    pub least: std::time::Duration,
}

impl TimeBudget {
    /// The budget of an invocation whose context gives `deadline`, read at `now`. A deadline already past when the
    /// invocation starts is no deadline (an emulator's placeholder): the invocation then gets `fallback`.
    pub fn until(
        deadline: std::time::SystemTime,
        now: std::time::SystemTime,
        fallback: std::time::Duration,
        margin: std::time::Duration,
        least: std::time::Duration,
    ) -> Self {
        let left = deadline
            .duration_since(now)
            .ok()
            .filter(|d| !d.is_zero())
            .unwrap_or(fallback);
        TimeBudget {
            deadline: tokio::time::Instant::now() + left,
            margin,
            least,
        }
    }

    /// A budget of `length` from now.
    pub fn lasting(length: std::time::Duration, margin: std::time::Duration, least: std::time::Duration) -> Self {
        TimeBudget {
            deadline: tokio::time::Instant::now() + length,
            margin,
            least,
        }
    }

    /// A queue batch's budget: `QUEUE_BATCH_MARGIN` kept back to record the last outcome and answer, no message
    /// started with less than `QUEUE_BATCH_LEAST` left; `fallback` (the template's Timeout) when the runtime gives no
    /// usable deadline.
    pub fn of_queue_batch(deadline: std::time::SystemTime, fallback: std::time::Duration) -> Self {
        Self::until(
            deadline,
            std::time::SystemTime::now(),
            fallback,
            QUEUE_BATCH_MARGIN,
            QUEUE_BATCH_LEAST,
        )
    }

    /// The time left for work: until the deadline, less the margin.
    pub fn left(&self) -> std::time::Duration {
        self.deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(self.margin)
    }
}

#[cfg(test)]
mod tests {
    use super::TimeBudget;
    use std::time::Duration;

    #[test]
    fn a_deadline_already_past_at_the_start_is_no_deadline() {
        let now = std::time::SystemTime::now();
        let two = Duration::from_secs(2);
        let placeholder = std::time::UNIX_EPOCH + Duration::from_millis(600_000);
        let budget = TimeBudget::until(placeholder, now, Duration::from_secs(30), two, two);
        let left = budget.deadline - tokio::time::Instant::now();
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        let real = TimeBudget::until(now + Duration::from_secs(10), now, Duration::from_secs(30), two, two);
        assert!(real.deadline - tokio::time::Instant::now() <= Duration::from_secs(10));
    }
}
