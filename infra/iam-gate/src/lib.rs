//! The local stack's IAM: a proxy in front of DynamoDB Local and moto that lets each function make only the AWS
//! calls its policies in template.yaml allow, and answers any other call as AWS would (`AccessDeniedException`).
//!
//! Each function runs with its own access key id (infra/local/lambda_sandbox.py gives it, as Lambda gives a
//! function its role's credentials); the policy file (infra/local/policies.py writes it from the template) maps
//! that key to the function's statements. Requests signed with any other key (the operators' tools, the event
//! pump, the tests' own reads) and unsigned ones (moto's `/moto-api`) pass unchecked, as an administrator's would.
//! A dev and test tool only: signatures are not verified, because the emulators behind it verify none either.

pub mod policy;
pub mod request;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use policy::{Decision, Principal};
use request::{Call, Need, Place};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The policy file: the account's place and each function's role, by access key id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub region: String,
    pub account: String,
    pub principals: HashMap<String, Principal>,
}

/// One refused call, as the gate logs it and `GET /_iam/denials` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Denial {
    pub function: String,
    pub action: String,
    pub resource: String,
}

pub struct Gate {
    /// Replaced whole by `PUT /_iam/policies` (a test takes an action away from a running stack).
    principals: RwLock<HashMap<String, Arc<Principal>>>,
    place: Place,
    /// Where DynamoDB calls go, where End User Messaging SMS's go (its local stand-in), and every other service's.
    dynamodb: String,
    sms: Option<String>,
    others: String,
    client: reqwest::Client,
    denials: Mutex<Vec<Denial>>,
    /// Calls held to a function's policy so far (allowed or not).
    checked: std::sync::atomic::AtomicU64,
}

const KEPT_DENIALS: usize = 10_000;

impl Gate {
    pub fn new(policies: Policies, dynamodb: String, others: String) -> Self {
        Gate {
            place: Place {
                region: policies.region.clone(),
                account: policies.account.clone(),
            },
            principals: RwLock::new(shared(policies.principals)),
            dynamodb: dynamodb.trim_end_matches('/').to_owned(),
            sms: None,
            others: others.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client"),
            denials: Mutex::new(Vec::new()),
            checked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sends End User Messaging SMS's calls (signed `sms-voice`) to `url` (its stand-in) rather than to moto.
    pub fn with_sms(mut self, url: String) -> Self {
        self.sms = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// The first need the principal is not allowed, if any.
    fn refused(&self, principal: &Principal, needs: &[Need]) -> Option<(Need, Decision)> {
        needs
            .iter()
            .find_map(|n| match principal.decide(&n.action, &n.resource) {
                Decision::Allowed => None,
                refused => Some((n.clone(), refused)),
            })
    }

    fn record(&self, denial: Denial) {
        tracing::warn!(function = %denial.function, action = %denial.action, resource = %denial.resource, "denied");
        let mut denials = self.denials.lock().expect("the denials lock");
        if denials.len() < KEPT_DENIALS {
            denials.push(denial);
        }
    }
}

fn shared(principals: HashMap<String, Principal>) -> HashMap<String, Arc<Principal>> {
    principals
        .into_iter()
        .map(|(key, principal)| (key, Arc::new(principal)))
        .collect()
}

pub fn router(gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/_iam/denials", get(denials).delete(clear_denials))
        .route("/_iam/policies", axum::routing::put(replace_policies))
        .route("/_iam/stats", get(stats))
        .fallback(handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(gate)
}

async fn denials(State(gate): State<Arc<Gate>>) -> Json<Vec<Denial>> {
    Json(gate.denials.lock().expect("the denials lock").clone())
}

/// How many function calls were checked, and how many of them refused.
async fn stats(State(gate): State<Arc<Gate>>) -> Json<serde_json::Value> {
    let checked = gate.checked.load(std::sync::atomic::Ordering::Relaxed);
    let denied = gate.denials.lock().expect("the denials lock").len();
    Json(serde_json::json!({ "checked": checked, "denied": denied }))
}

async fn clear_denials(State(gate): State<Arc<Gate>>) -> StatusCode {
    gate.denials.lock().expect("the denials lock").clear();
    StatusCode::NO_CONTENT
}

async fn replace_policies(State(gate): State<Arc<Gate>>, Json(policies): Json<Policies>) -> StatusCode {
    *gate.principals.write().expect("the policies lock") = shared(policies.principals);
    StatusCode::NO_CONTENT
}

async fn handle(State(gate): State<Arc<Gate>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let signer = request::signer(authorization);
    let service = signer.as_ref().map(|s| s.service.as_str()).unwrap_or_default();
    let principal = signer.as_ref().and_then(|s| {
        let principals = gate.principals.read().expect("the policies lock");
        principals.get(&s.access_key).cloned()
    });
    if let Some(principal) = principal.as_ref() {
        gate.checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let call = Call {
            service,
            method: method.as_str(),
            path: uri.path(),
            target: headers.get("x-amz-target").and_then(|v| v.to_str().ok()),
            body: &body,
        };
        let refusal = match request::needs(&call, &gate.place) {
            Ok(needs) => gate.refused(principal, &needs),
            // A call the gate cannot read is refused, never waved through: an unknown call is one nobody granted.
            Err(unreadable) => Some((
                Need {
                    action: format!("{service}:?"),
                    resource: unreadable.to_string(),
                },
                Decision::ImplicitDeny,
            )),
        };
        if let Some((need, decision)) = refusal {
            gate.record(Denial {
                function: principal.function.clone(),
                action: need.action.clone(),
                resource: need.resource.clone(),
            });
            return access_denied(service, principal, &need, decision);
        }
    }
    let upstream = match (service, &gate.sms) {
        ("dynamodb", _) => &gate.dynamodb,
        ("sms-voice", Some(sms)) => sms,
        _ => &gate.others,
    };
    forward(&gate.client, upstream, method, &uri, headers, body).await
}

/// AWS's answer to a call outside the caller's policies, in the shape each service's protocol has.
fn access_denied(service: &str, principal: &Principal, need: &Need, decision: Decision) -> Response {
    let why = match decision {
        Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_owned(),
        _ => format!("because no identity-based policy allows the {} action", need.action),
    };
    let message = format!(
        "User: {} is not authorized to perform: {} on resource: {} {why}",
        principal.arn, need.action, need.resource
    );
    let (status, body, extra): (StatusCode, serde_json::Value, Option<(&str, &str)>) = match service {
        // REST-JSON: the type is in a header, the message in the body.
        "ses" => (
            StatusCode::FORBIDDEN,
            serde_json::json!({ "message": message }),
            Some(("x-amzn-errortype", "AccessDeniedException")),
        ),
        "sqs" => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "__type": "com.amazon.coral.service#AccessDeniedException", "message": message }),
            Some(("x-amzn-query-error", "AccessDenied;Sender")),
        ),
        "secretsmanager" => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "__type": "AccessDeniedException", "Message": message }),
            None,
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "__type": "com.amazon.coral.service#AccessDeniedException", "Message": message }),
            None,
        ),
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    let content_type = if service == "ses" {
        "application/json"
    } else {
        "application/x-amz-json-1.0"
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_static("00000000-0000-0000-0000-000000000000"),
    );
    if let Some((name, value)) = extra {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}

/// Hop-by-hop headers, and those the client recomputes.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut outgoing = HeaderMap::new();
    for (name, value) in headers.iter().filter(|(name, _)| passes(name)) {
        outgoing.append(name.clone(), value.clone());
    }
    let sent = client
        .request(method, format!("{upstream}{path}"))
        .headers(outgoing)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(%error, upstream, "the emulator did not answer");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the emulator at {upstream} did not answer"),
            )
                .into_response();
        }
    };
    let status = answer.status();
    let mut back = HeaderMap::new();
    for (name, value) in answer.headers().iter().filter(|(name, _)| passes(name)) {
        back.append(name.clone(), value.clone());
    }
    match answer.bytes().await {
        Ok(bytes) => (status, back, bytes).into_response(),
        Err(error) => {
            tracing::error!(%error, upstream, "the emulator's answer broke off");
            (StatusCode::BAD_GATEWAY, "the emulator's answer broke off").into_response()
        }
    }
}
