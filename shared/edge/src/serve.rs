//! The loops every function's `main` ends in, so that a function is its wiring and its handler:
//!
//! - [`serve_api`]: a chatbot or staff API endpoint. The API key, the method and the key's role are checked first
//!   (401, 405, 403); the handler gets the key that passed and returns a use case's result, mapped to a response
//!   here, once.
//! - [`serve_http`]: a page or a webhook that checks its own credential (a signed link, a signature).
//! - [`serve_queue`]: an SQS consumer with partial batch failures, each failure made visible again after its delay.
//! - [`serve_events`]: any other event (a schedule tick).

use crate::config::{ColdStart, ConfigError};
use crate::http::response::error_response;
use crate::http::{Route, check};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{Body, Request, Response};
use lambda_runtime::LambdaEvent;
use std::future::Future;
use std::time::Duration;
use tour_aws::dynamo::DynamoStore;
use tour_aws::secrets::RotatingSecret;
use tour_aws::sqs::batch;
use tour_core::app::AppError;
use tour_core::app::budget::TimeBudget;
use tour_core::app::reach::InReach;
use tour_core::domain::access::Credential;
use tour_core::ports::{Failed, QueuedMessage};

pub use lambda_runtime::Error;

/// What an API handler answers: a response, or a use case's error for [`serve_api`] to map.
pub type Answer = Result<Response<Body>, AppError>;

/// What every API endpoint holds: the table and the API keys, and what else its use case needs (`with`).
pub struct Api<X = ()> {
    pub store: DynamoStore,
    pub keys: RotatingSecret,
    pub with: X,
}

impl<X> Api<X> {
    /// The properties a key reaches: those of its companies; any other reads as unknown.
    pub fn reach<'a>(&'a self, caller: &'a Credential) -> InReach<'a> {
        InReach::new(&self.store, &caller.accounts)
    }
}

impl ColdStart {
    /// An API endpoint's table (`TABLE_NAME`) and keys (`API_KEYS_SECRET_ARN`), with `with`.
    pub async fn api<X>(&self, with: X) -> Result<Api<X>, ConfigError> {
        Ok(Api {
            store: self.store()?,
            keys: crate::config::api_keys(&self.secrets).await?,
            with,
        })
    }
}

/// An API handler: `async fn handle(api: &Api<Deps>, caller: Credential, request: Request) -> Result<Response<Body>,
/// AppError>`. (A trait rather than a plain `Fn` bound, so the answer's future may borrow the dependencies.)
pub trait ApiHandler<'a, X: 'a> {
    type Answer: Future<Output = Result<Response<Body>, AppError>> + Send + 'a;
    fn call(&self, api: &'a Api<X>, caller: Credential, request: Request) -> Self::Answer;
}

impl<'a, X: 'a, F, A> ApiHandler<'a, X> for F
where
    F: Fn(&'a Api<X>, Credential, Request) -> A,
    A: Future<Output = Result<Response<Body>, AppError>> + Send + 'a,
{
    type Answer = A;
    fn call(&self, api: &'a Api<X>, caller: Credential, request: Request) -> A {
        self(api, caller, request)
    }
}

/// Serves an API endpoint: the gate of `route` first, then `handle`, whose error is mapped here.
pub async fn serve_api<X, H>(api: &Api<X>, route: Route, handle: H) -> Result<(), Error>
where
    X: Sync,
    H: for<'a> ApiHandler<'a, X> + Sync,
{
    let (handle, route) = (&handle, &route);
    lambda_http::run(lambda_http::service_fn(move |request: Request| async move {
        let answer = match check(&api.keys, &request, route).await {
            Ok(caller) => handle
                .call(api, caller, request)
                .await
                .unwrap_or_else(|err| error_response(&err)),
            Err(refusal) => *refusal,
        };
        Ok::<_, Error>(answer)
    }))
    .await
}

/// A request handler of a page or webhook: `async fn handle(deps: &Deps, request: Request) -> Response<Body>`.
pub trait HttpHandler<'a, D: ?Sized + 'a> {
    type Answer: Future<Output = Response<Body>> + Send + 'a;
    fn call(&self, deps: &'a D, request: Request) -> Self::Answer;
}

impl<'a, D: ?Sized + 'a, F, A> HttpHandler<'a, D> for F
where
    F: Fn(&'a D, Request) -> A,
    A: Future<Output = Response<Body>> + Send + 'a,
{
    type Answer = A;
    fn call(&self, deps: &'a D, request: Request) -> A {
        self(deps, request)
    }
}

/// Serves a function's requests with `handle` and the dependencies built at cold start.
pub async fn serve_http<D, H>(deps: &D, handle: H) -> Result<(), Error>
where
    D: Sync + ?Sized,
    H: for<'a> HttpHandler<'a, D> + Sync,
{
    let handle = &handle;
    lambda_http::run(lambda_http::service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle.call(deps, request).await)
    }))
    .await
}

/// Serves a function's events (a schedule tick) with `handle`: `async fn handle(deps: &Deps, event: LambdaEvent<E>)
/// -> Result<R, Error>`. The dependencies may borrow what `main` holds.
pub async fn serve_events<D, E, R, H>(deps: &D, handle: H) -> Result<(), Error>
where
    D: ?Sized,
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    H: AsyncFn(&D, LambdaEvent<E>) -> Result<R, Error>,
{
    let handle = &handle;
    lambda_runtime::run(lambda_runtime::service_fn(async |event: LambdaEvent<E>| {
        handle(deps, event).await
    }))
    .await
}

/// A queue's settings as its consumer reads them: its URL (`<QUEUE>_QUEUE_URL`), the receive on which a message is
/// given up and left to the dead-letter queue (`<QUEUE>_MAX_RECEIVES`, default 5, the template's
/// `maxReceiveCount`), the first retry's delay (`<QUEUE>_RETRY_BASE_SECONDS`, default 30, doubled on each receive)
/// and the consumer's timeout in the template, which stands in when the runtime gives no usable deadline.
pub struct Consumer {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub max_receives: u32,
    pub retry_base: Duration,
    pub timeout: Duration,
}

/// The variables a queue's settings are read from, and its consumer's timeout in the template.
pub struct QueueVariables {
    pub url: &'static str,
    pub max_receives: &'static str,
    pub retry_base: &'static str,
    pub timeout: Duration,
}

/// The tour sync queue, which `tour-sync-worker` consumes.
pub const SYNC_QUEUE: QueueVariables = QueueVariables {
    url: "SYNC_QUEUE_URL",
    max_receives: "SYNC_MAX_RECEIVES",
    retry_base: "SYNC_RETRY_BASE_SECONDS",
    timeout: Duration::from_secs(30),
};

/// The notification queue, which `notification-sender` consumes.
pub const NOTIFY_QUEUE: QueueVariables = QueueVariables {
    url: "NOTIFY_QUEUE_URL",
    max_receives: "NOTIFY_MAX_RECEIVES",
    retry_base: "NOTIFY_RETRY_BASE_SECONDS",
    timeout: Duration::from_secs(30),
};

/// The poll queue, which `resman-poll-worker` consumes.
pub const POLL_QUEUE: QueueVariables = QueueVariables {
    url: "POLL_QUEUE_URL",
    max_receives: "POLL_MAX_RECEIVES",
    retry_base: "POLL_RETRY_BASE_SECONDS",
    timeout: Duration::from_secs(60),
};

impl ColdStart {
    /// The settings of the queue this function consumes.
    pub fn consumer(&self, queue: &QueueVariables) -> Result<Consumer, ConfigError> {
        Ok(Consumer {
            client: aws_sdk_sqs::Client::new(&self.sdk),
            url: crate::config::required(queue.url)?,
            max_receives: crate::config::optional_number(queue.max_receives, 5)?,
            retry_base: crate::config::optional_seconds(queue.retry_base, 30)?,
            timeout: queue.timeout,
        })
    }
}

/// A batch as a consumer's handler gets it: the messages, the time the invocation has left, and the first retry's
/// delay.
pub struct Batch<'m> {
    pub messages: &'m [QueuedMessage],
    pub budget: TimeBudget,
    pub retry_base: Duration,
}

/// Serves an SQS consumer: each batch goes to `handle` (`async fn handle(deps: &Deps, batch: Batch<'_>) ->
/// Vec<Failed>`, the messages to leave on the queue and when each comes back), and what it reports failed is made
/// visible again after its delay (partial batch response). The dependencies may borrow what `main` holds.
pub async fn serve_queue<D, H>(deps: &D, consumer: &Consumer, handle: H) -> Result<(), Error>
where
    D: ?Sized,
    H: AsyncFn(&D, Batch<'_>) -> Vec<Failed>,
{
    let handle = &handle;
    lambda_runtime::run(lambda_runtime::service_fn(async |event: LambdaEvent<SqsEvent>| {
        let (messages, handles) = batch::messages(&event.payload);
        let budget = TimeBudget::of_queue_batch(event.context.deadline(), consumer.timeout);
        let failed = handle(
            deps,
            Batch {
                messages: &messages,
                budget,
                retry_base: consumer.retry_base,
            },
        )
        .await;
        Ok::<SqsBatchResponse, Error>(batch::respond(&consumer.client, &consumer.url, &handles, failed).await)
    }))
    .await
}
