//! Operational metrics in CloudWatch's Embedded Metric Format: one JSON line on stdout per data point, which Lambda
//! sends to CloudWatch Logs and CloudWatch turns into metrics (no API call, no extra permission, no latency).
//!
//! Namespace `METRICS_NAMESPACE` (default `TourBooking`), dimension `Stack` = `STACK_NAME` (the template sets both),
//! so two stacks in one account keep their own figures. The alarms and the dashboard in `template.yaml` read these
//! names: change one here and there together (`infra/local/tests/test_operations.py` checks the template's side).
//! Lines carry counts, durations and error classes only: never an id of a person, never a value from a request.

use std::cell::RefCell;
use std::sync::OnceLock;

/// The metrics the functions emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A booking the API accepted (201 or 202).
    BookingsAccepted,
    /// Accepted while ResMan was unavailable: its ResMan write is owed (the queue retries it).
    BookingsPending,
    /// ResMan refused a booking, or never took it after every retry.
    BookingsFailed,
    /// A booking refused because its slot was taken: a double booking prevented.
    SlotTakenRefusals,
    /// One HTTP call to ResMan, in milliseconds.
    ResManLatency,
    /// A failed ResMan call, also by `ErrorClass`.
    ResManErrors,
    MessagesSent,
    MessagesFailed,
    /// A text handed to the text service.
    TextsSent,
    /// A sent text the phone network reported delivered.
    TextsDelivered,
    /// A text that failed for good (refused, or the number opted out): its reminder falls back to email.
    TextsFailed,
    /// A webhook notice refused (bad signature, stale, malformed).
    WebhookRefusals,
    /// How far behind now a property's poll window started, in seconds.
    PollerLagSeconds,
    /// One tick of the change poller.
    PollerRuns,
    /// The age of the oldest booking whose ResMan write is still owed (0 when none).
    OldestPendingSyncSeconds,
    /// A staff change in ResMan that crossed one of ours (or that our tour's state refused), settled by the rule.
    ConflictsSettled,
    /// A tour whose two sides recorded different outcomes, marked for staff (counted once, when marked).
    Disagreements,
    /// An API request refused because its key's role may not do it (403).
    AccessRefusals,
    /// A hold refused because its key already keeps as many as it may at that property and hour (429).
    HoldLimitRefusals,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::BookingsAccepted => "BookingsAccepted",
            Self::BookingsPending => "BookingsPending",
            Self::BookingsFailed => "BookingsFailed",
            Self::SlotTakenRefusals => "SlotTakenRefusals",
            Self::ResManLatency => "ResManLatency",
            Self::ResManErrors => "ResManErrors",
            Self::MessagesSent => "MessagesSent",
            Self::MessagesFailed => "MessagesFailed",
            Self::TextsSent => "TextsSent",
            Self::TextsDelivered => "TextsDelivered",
            Self::TextsFailed => "TextsFailed",
            Self::WebhookRefusals => "WebhookRefusals",
            Self::PollerLagSeconds => "PollerLagSeconds",
            Self::PollerRuns => "PollerRuns",
            Self::OldestPendingSyncSeconds => "OldestPendingSyncSeconds",
            Self::ConflictsSettled => "ConflictsSettled",
            Self::Disagreements => "Disagreements",
            Self::AccessRefusals => "AccessRefusals",
            Self::HoldLimitRefusals => "HoldLimitRefusals",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Self::ResManLatency => "Milliseconds",
            Self::PollerLagSeconds | Self::OldestPendingSyncSeconds => "Seconds",
            _ => "Count",
        }
    }

    pub const ALL: [Metric; 19] = [
        Self::BookingsAccepted,
        Self::BookingsPending,
        Self::BookingsFailed,
        Self::SlotTakenRefusals,
        Self::ResManLatency,
        Self::ResManErrors,
        Self::MessagesSent,
        Self::MessagesFailed,
        Self::TextsSent,
        Self::TextsDelivered,
        Self::TextsFailed,
        Self::WebhookRefusals,
        Self::PollerLagSeconds,
        Self::PollerRuns,
        Self::OldestPendingSyncSeconds,
        Self::ConflictsSettled,
        Self::Disagreements,
        Self::AccessRefusals,
        Self::HoldLimitRefusals,
    ];
}

/// Where the lines go: the namespace and the stack's name.
struct Target {
    namespace: String,
    stack: String,
}

static TARGET: OnceLock<Target> = OnceLock::new();

/// Sets where the lines go, once per cold start (the edge reads `METRICS_NAMESPACE` and `STACK_NAME`); a later call
/// changes nothing. Without it the lines go to `TourBooking`, stack `local`.
pub fn configure(namespace: String, stack: String) {
    let _ = TARGET.set(Target { namespace, stack });
}

fn target() -> &'static Target {
    TARGET.get_or_init(|| Target {
        namespace: "TourBooking".to_owned(),
        stack: "local".to_owned(),
    })
}

/// One EMF line: `metric` = `value` at `at_ms` (epoch milliseconds), with the `Stack` dimension and, when given,
/// a second dimension (as a second dimension set, so the metric is also summed over it).
pub fn line(
    namespace: &str,
    stack: &str,
    metric: Metric,
    value: f64,
    extra: Option<(&'static str, &str)>,
    at_ms: i64,
) -> String {
    let mut dimensions = vec![serde_json::json!(["Stack"])];
    let mut body = serde_json::json!({
        "Stack": stack,
        metric.name(): value,
    });
    if let Some((name, dimension_value)) = extra {
        dimensions.push(serde_json::json!(["Stack", name]));
        body[name] = serde_json::Value::from(dimension_value);
    }
    body["_aws"] = serde_json::json!({
        "Timestamp": at_ms,
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": dimensions,
            "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
        }],
    });
    body.to_string()
}

tokio::task_local! {
    /// Set by [`capture`]: the lines emitted inside it are kept instead of printed.
    static CAPTURED: RefCell<Vec<String>>;
}

fn emit(metric: Metric, value: f64, extra: Option<(&'static str, &str)>) {
    let target = target();
    let text = line(
        &target.namespace,
        &target.stack,
        metric,
        value,
        extra,
        chrono::Utc::now().timestamp_millis(),
    );
    let kept = CAPTURED.try_with(|lines| lines.borrow_mut().push(text.clone()));
    if kept.is_err() {
        println!("{text}");
    }
}

/// Counts one occurrence.
pub fn count(metric: Metric) {
    emit(metric, 1.0, None);
}

/// Records a value (a duration, an age).
pub fn record(metric: Metric, value: f64) {
    emit(metric, value, None);
}

/// Counts one occurrence of a class of it (an error class).
pub fn count_by(metric: Metric, dimension: &'static str, class: &str) {
    emit(metric, 1.0, Some((dimension, class)));
}

/// Runs `work`, keeping the metric lines it emits (in its own task): for tests.
pub async fn capture<F: std::future::Future>(work: F) -> (F::Output, Vec<String>) {
    CAPTURED
        .scope(RefCell::new(Vec::new()), async move {
            let out = work.await;
            let lines = CAPTURED.with(|lines| lines.take());
            (out, lines)
        })
        .await
}

/// The names of the metrics in captured lines, in order: what a test compares.
pub fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_embedded_metric_format_with_the_stack_dimension() {
        let text = line(
            "TourBooking",
            "prod",
            Metric::ResManLatency,
            123.0,
            None,
            1_700_000_000_000,
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ResManLatency"], 123.0);
        assert_eq!(v["Stack"], "prod");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], "TourBooking");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Stack"]]));
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "ResManLatency", "Unit": "Milliseconds"}])
        );
    }

    #[test]
    fn a_class_is_a_second_dimension_set_and_its_value_a_member() {
        let text = line("N", "s", Metric::ResManErrors, 1.0, Some(("ErrorClass", "timeout")), 0);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ErrorClass"], "timeout");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Stack"], ["Stack", "ErrorClass"]])
        );
    }

    #[tokio::test]
    async fn captured_lines_are_kept_and_named() {
        let ((), lines) = capture(async {
            count(Metric::BookingsAccepted);
            count_by(Metric::ResManErrors, "ErrorClass", "server");
        })
        .await;
        assert_eq!(names(&lines), vec!["BookingsAccepted", "ResManErrors"]);
    }
}
