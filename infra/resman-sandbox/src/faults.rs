//! Fault injection for the ResMan surface, set at run time through `/_sandbox/faults`.
//!
//! Latency applies to every matching request while set. The probabilistic faults (hang, HTTP error,
//! `Status=Error`, applied-then-503) are rolled per matching request, in that order, first hit wins; with
//! `remaining` set they are rolled for the next N matching requests only.

use std::time::Duration;

use rand::RngExt;
use serde::Serialize;
use serde_json::Value;

const DEFAULT_HTTP_ERROR_STATUSES: [u16; 3] = [500, 502, 503];
const DEFAULT_STATUS_ERROR_MESSAGE: &str = "Simulated failure";

/// The fault settings, as `GET /_sandbox/faults` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Faults {
    pub latency_ms: u64,
    pub http_error_rate: f64,
    pub http_error_statuses: Vec<u16>,
    pub hang_rate: f64,
    pub status_error_rate: f64,
    pub status_error_message: String,
    pub applied_then_503_rate: f64,
    /// Method names (`PostLeadManagement4_0`, or `MITS/PostLeadManagement4_0`); `None` = every method.
    pub methods: Option<Vec<String>>,
    /// The `AccountID`s (management companies) the faults hit; `None` = every account.
    pub accounts: Option<Vec<i64>>,
    pub remaining: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            http_error_rate: 0.0,
            http_error_statuses: DEFAULT_HTTP_ERROR_STATUSES.to_vec(),
            hang_rate: 0.0,
            status_error_rate: 0.0,
            status_error_message: DEFAULT_STATUS_ERROR_MESSAGE.to_owned(),
            applied_then_503_rate: 0.0,
            methods: None,
            accounts: None,
            remaining: None,
        }
    }
}

/// A fault settings body that cannot be used; `field` names the culprit when there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct FaultsError {
    pub field: Option<String>,
    pub message: String,
}

impl FaultsError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

/// What to do instead of (or after) answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Hang,
    HttpError(u16),
    StatusError(String),
    AppliedThen503,
}

impl FaultAction {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Hang => "hang",
            Self::HttpError(_) => "http_error",
            Self::StatusError(_) => "status_error",
            Self::AppliedThen503 => "applied_then_503",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub action: Option<FaultAction>,
}

impl Faults {
    /// Reads a settings body field by field, so that an error can name its field (serde's messages do
    /// not for a wrong type). Fields left out keep their defaults; `null` means left out.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, FaultsError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| FaultsError {
            field: None,
            message: format!("body is not JSON: {e}"),
        })?;
        let Value::Object(fields) = value else {
            return Err(FaultsError {
                field: None,
                message: "body must be a JSON object".to_owned(),
            });
        };
        let mut faults = Self::default();
        for (name, value) in fields {
            if value.is_null() {
                continue;
            }
            match name.as_str() {
                "latency_ms" => faults.latency_ms = typed(&name, value, "a whole number of ms")?,
                "http_error_rate" => faults.http_error_rate = rate(&name, value)?,
                "http_error_statuses" => {
                    let statuses: Vec<u16> = typed(&name, value, "a list of HTTP status codes")?;
                    if statuses.is_empty() || statuses.iter().any(|s| !(400..=599).contains(s)) {
                        return Err(FaultsError::field(
                            &name,
                            "must be a non-empty list of status codes between 400 and 599",
                        ));
                    }
                    faults.http_error_statuses = statuses;
                }
                "hang_rate" => faults.hang_rate = rate(&name, value)?,
                "status_error_rate" => faults.status_error_rate = rate(&name, value)?,
                "status_error_message" => {
                    faults.status_error_message = typed(&name, value, "a string")?;
                }
                "applied_then_503_rate" => faults.applied_then_503_rate = rate(&name, value)?,
                "methods" => faults.methods = Some(typed(&name, value, "a list of method names")?),
                "accounts" => faults.accounts = Some(typed(&name, value, "a list of AccountIDs")?),
                "remaining" => faults.remaining = Some(typed(&name, value, "a whole number")?),
                _ => return Err(FaultsError::field(&name, format!("unknown field {name:?}"))),
            }
        }
        Ok(faults)
    }

    fn applies_to(&self, area: &str, method: &str, account: i64) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m == method || *m == format!("{area}/{method}")))
            && self
                .accounts
                .as_ref()
                .is_none_or(|accounts| accounts.contains(&account))
    }

    /// Decides the faults for one request to `account` and counts it against `remaining`.
    pub(crate) fn decide(&mut self, area: &str, method: &str, account: i64, rng: &mut impl RngExt) -> Decision {
        if !self.applies_to(area, method, account) {
            return Decision::default();
        }
        let latency = Duration::from_millis(self.latency_ms);
        if let Some(remaining) = self.remaining.as_mut() {
            if *remaining == 0 {
                return Decision { latency, action: None };
            }
            *remaining -= 1;
        }
        let action = if rng.random_bool(self.hang_rate) {
            Some(FaultAction::Hang)
        } else if rng.random_bool(self.http_error_rate) {
            let pick = rng.random_range(0..self.http_error_statuses.len());
            Some(FaultAction::HttpError(self.http_error_statuses[pick]))
        } else if rng.random_bool(self.status_error_rate) {
            Some(FaultAction::StatusError(self.status_error_message.clone()))
        } else if rng.random_bool(self.applied_then_503_rate) {
            Some(FaultAction::AppliedThen503)
        } else {
            None
        };
        Decision { latency, action }
    }
}

fn typed<T: serde::de::DeserializeOwned>(name: &str, value: Value, expected: &str) -> Result<T, FaultsError> {
    serde_json::from_value(value).map_err(|_| FaultsError::field(name, format!("must be {expected}")))
}

fn rate(name: &str, value: Value) -> Result<f64, FaultsError> {
    let rate: f64 = typed(name, value, "a number between 0.0 and 1.0")?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(FaultsError::field(name, "must be a number between 0.0 and 1.0"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Faults, FaultsError> {
        Faults::parse(json.as_bytes())
    }

    #[test]
    fn every_field_is_optional() {
        assert_eq!(parse("{}"), Ok(Faults::default()));
    }

    #[test]
    fn errors_name_the_field() {
        for (body, field) in [
            (r#"{"http_error_rate": 1.5}"#, "http_error_rate"),
            (r#"{"hang_rate": "often"}"#, "hang_rate"),
            (r#"{"latency_ms": -1}"#, "latency_ms"),
            (r#"{"http_error_statuses": [200]}"#, "http_error_statuses"),
            (r#"{"remaining": 1.5}"#, "remaining"),
            (r#"{"latency": 10}"#, "latency"),
        ] {
            assert_eq!(parse(body).map_err(|e| e.field), Err(Some(field.to_owned())), "{body}");
        }
        assert_eq!(parse("[]").map_err(|e| e.field), Err(None));
    }

    #[test]
    fn a_certain_fault_always_fires_and_the_first_in_order_wins() {
        let mut faults = parse(r#"{"hang_rate": 1.0, "http_error_rate": 1.0}"#).expect("valid");
        let decision = faults.decide("MITS", "SearchProspects", 1, &mut rand::rng());
        assert_eq!(decision.action, Some(FaultAction::Hang));
    }

    #[test]
    fn methods_limit_every_fault_including_latency() {
        let mut faults = parse(r#"{"latency_ms": 50, "status_error_rate": 1.0, "methods": ["PostLeadManagement4_0"]}"#)
            .expect("valid");
        assert_eq!(
            faults.decide("Leasing", "GetEmployees", 1, &mut rand::rng()),
            Decision::default()
        );
        let decision = faults.decide("MITS", "PostLeadManagement4_0", 1, &mut rand::rng());
        assert_eq!(decision.latency, Duration::from_millis(50));
        assert_eq!(
            decision.action,
            Some(FaultAction::StatusError("Simulated failure".to_owned()))
        );
    }

    #[test]
    fn accounts_limit_every_fault_to_those_companies() {
        let mut faults = parse(r#"{"latency_ms": 50, "hang_rate": 1.0, "accounts": [400]}"#).expect("valid");
        assert_eq!(
            faults.decide("MITS", "SearchProspects", 401, &mut rand::rng()),
            Decision::default()
        );
        let decision = faults.decide("MITS", "SearchProspects", 400, &mut rand::rng());
        assert_eq!(decision.action, Some(FaultAction::Hang));
        assert_eq!(decision.latency, Duration::from_millis(50));
        assert_eq!(
            parse(r#"{"accounts": ["a"]}"#).map_err(|e| e.field),
            Err(Some("accounts".to_owned()))
        );
    }

    #[test]
    fn remaining_stops_the_probabilistic_faults_but_not_latency() {
        let mut faults =
            parse(r#"{"latency_ms": 5, "http_error_rate": 1.0, "http_error_statuses": [502], "remaining": 2}"#)
                .expect("valid");
        let mut rng = rand::rng();
        for _ in 0..2 {
            assert_eq!(
                faults.decide("MITS", "SearchProspects", 1, &mut rng).action,
                Some(FaultAction::HttpError(502))
            );
        }
        let third = faults.decide("MITS", "SearchProspects", 1, &mut rng);
        assert_eq!(third.action, None);
        assert_eq!(third.latency, Duration::from_millis(5));
        assert_eq!(faults.remaining, Some(0));
    }
}
