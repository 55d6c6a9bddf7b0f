//! Harness for tests against real local components. Each test starts its own moto server (SQS, SES, Secrets
//! Manager) and its own ResMan sandbox on free ports, and gets its own tables in the test process's DynamoDB Local,
//! all provisioned from `template.yaml` by the project's own `infra/local/provision.py`; each is stopped when
//! dropped (DynamoDB Local when the process ends). A missing tool fails the test with a message that names it: never a silent skip.

pub mod customers;
pub mod stack;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use resman_sandbox::{RunningSandbox, SandboxConfig};

/// The demo property (America/Chicago) and the second one (America/Phoenix) of the sandbox's seed.
pub const DEMO_PROPERTY: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01";
pub const PHOENIX_PROPERTY: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f02";
pub const DEMO_AGENTS: [&str; 3] = [
    "a1e0c3b2-0001-4c6a-9d1e-000000000001",
    "a1e0c3b2-0002-4c6a-9d1e-000000000002",
    "a1e0c3b2-0003-4c6a-9d1e-000000000003",
];
pub const PHOENIX_AGENT: &str = "a1e0c3b2-0011-4c6a-9d1e-000000000011";
pub const DEMO_SOURCE: &str = "b7d3e8f0-0001-4d2c-8a5b-000000000001";
pub const PHOENIX_SOURCE: &str = "b7d3e8f0-0011-4d2c-8a5b-000000000011";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The project's Python environment (`make venv` creates it); `TOUR_BOOKING_VENV` overrides.
pub fn venv() -> PathBuf {
    std::env::var_os("TOUR_BOOKING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
}

fn tool(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.exists(),
        "required tool `{name}` was not found at {}: run `make venv` (or `make test`, which installs it)",
        path.display()
    );
    path
}

/// A port free now and never handed out before in this process: two servers started side by side by parallel
/// tests never race for one port. (A process outside may still take it first: see [`start_moto`].)
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free local port");
        if GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(port)
        {
            return port;
        }
    }
}

/// Starts moto on a free port: its endpoint and process. Its own "Running on" line proves it bound the port (a
/// port that merely answers could be another server's, taken between the port's pick and moto's bind, which would
/// vanish mid-test); one that lost its port is started again on another.
fn start_moto() -> (String, Child) {
    let moto_server = tool("moto_server");
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", moto_server.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready, told) = std::sync::mpsc::channel();
        let running = format!("Running on http://127.0.0.1:{port}");
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut said = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(&running) {
                    let _ = ready.send(Ok(()));
                } else {
                    said.push_str(&line);
                    said.push('\n');
                }
            }
            // Ended: drained to the last line, so moto never blocks on a full pipe.
            let _ = ready.send(Err(said));
        });
        match told.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => return (format!("http://127.0.0.1:{port}"), child),
            Ok(Err(said)) => last = said,
            Err(_) => last = format!("no \"Running on\" line within 20 s on port {port}"),
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("moto_server did not start: {}", last.trim());
}

/// The stand-in for AWS End User Messaging SMS (`infra/local/sms_sandbox.py`), one per test, on a free port; it stops
/// when this is dropped.
pub struct SmsSandbox {
    child: Child,
    pub url: String,
}

impl SmsSandbox {
    /// Started with its delivery receipts and prospects' replies POSTed to `events` and `inbound`, when given.
    pub fn start(events: Option<&str>, inbound: Option<&str>) -> SmsSandbox {
        use std::io::BufRead;
        let port = free_port();
        let mut cmd = Command::new(tool("python"));
        cmd.arg("-u")
            .arg(workspace_root().join("infra/local/sms_sandbox.py"))
            .args(["--port", &port.to_string()]);
        if let Some(url) = events {
            cmd.args(["--deliver-events-to", url]);
        }
        if let Some(url) = inbound {
            cmd.args(["--deliver-inbound-to", url]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("could not start infra/local/sms_sandbox.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, told) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = ready.send(());
                }
            }
        });
        if told.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            panic!("infra/local/sms_sandbox.py did not say it was listening within 20 s");
        }
        SmsSandbox {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// An SDK configuration that sends to it.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_at(&self.url).await
    }

    /// A call to its control surface (`/_sandbox/...`): the JSON answer.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("the SMS sandbox's control surface")
            .json()
            .await
            .expect("a JSON answer")
    }
}

impl Drop for SmsSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// DynamoDB Local, one per test process, started on first use through `infra/local/dynamodb_local.py` (the one
/// way the project starts it). Tests share it and keep apart by table name (each [`LocalAws`] provisions its own
/// prefix). A static is never dropped, so the JVM's end is tied to this process instead: the launcher stops it
/// when its standard input closes, which the kernel does when this process exits, however it exits.
struct DynamoDbLocal {
    endpoint: String,
    _child: Child,
    _stdin: std::process::ChildStdin,
}

fn dynamodb_local() -> &'static str {
    static LOCAL: std::sync::OnceLock<DynamoDbLocal> = std::sync::OnceLock::new();
    &LOCAL
        .get_or_init(|| {
            let python = tool("python");
            let launcher = workspace_root().join("infra/local/dynamodb_local.py");
            let port = free_port();
            let mut child = Command::new(python)
                .arg(&launcher)
                .args(["--port", &port.to_string(), "--until-stdin-closes"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", launcher.display()));
            let stdin = child.stdin.take().expect("piped stdin");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("piped stdout");
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            if !line.starts_with("ready ") {
                let mut reason = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut reason);
                }
                panic!(
                    "DynamoDB Local did not start (infra/local/dynamodb_local.py): {}",
                    reason.trim()
                );
            }
            DynamoDbLocal {
                endpoint: format!("http://127.0.0.1:{port}"),
                _child: child,
                _stdin: stdin,
            }
        })
        .endpoint
}

/// The local AWS of one test: its own moto (SQS, SES, Secrets Manager) and its own tables in the process's
/// DynamoDB Local, all provisioned from `template.yaml`. moto stops when this is dropped.
pub struct LocalAws {
    child: Child,
    /// moto's URL.
    pub endpoint: String,
    /// DynamoDB Local's URL.
    pub dynamodb_endpoint: String,
    /// The functions' environment as resolved from the template (TABLE_NAME, SYNC_QUEUE_URL, ...).
    pub env: HashMap<String, String>,
    /// Each function's IAM policy, resolved from the template for these resources (the IAM gate's file).
    pub policies: String,
}

impl LocalAws {
    /// Starts moto and creates the template's tables (in DynamoDB Local), queues and secrets (in moto).
    /// `params` are template parameters (`ResManBaseUrl=...`), `secrets` the local secret values
    /// (`WebhookSecretArn=...`).
    pub fn start(params: &[(&str, &str)], secrets: &[(&str, &str)]) -> LocalAws {
        let dynamodb_endpoint = dynamodb_local().to_owned();
        let python = tool("python");
        let (endpoint, child) = start_moto();
        let mut aws = LocalAws {
            child,
            endpoint,
            dynamodb_endpoint,
            env: HashMap::new(),
            policies: String::new(),
        };
        // Each test's tables have their own names in the shared DynamoDB Local.
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let env_file = std::env::temp_dir().join(format!("tour-booking-env-{prefix}"));
        let policies_file = std::env::temp_dir().join(format!("tour-booking-policies-{prefix}"));
        let mut cmd = Command::new(python);
        cmd.arg(workspace_root().join("infra/local/provision.py"))
            .args(["--endpoint", &aws.endpoint])
            .args(["--dynamodb-endpoint", &aws.dynamodb_endpoint])
            .args(["--prefix", &prefix, "--env-out"])
            .arg(&env_file)
            .arg("--policies-out")
            .arg(&policies_file);
        for (k, v) in params {
            cmd.args(["--param", &format!("{k}={v}")]);
        }
        for (k, v) in secrets {
            cmd.args(["--secret", &format!("{k}={v}")]);
        }
        let out = cmd.output().expect("could not run infra/local/provision.py");
        assert!(
            out.status.success(),
            "provision.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&env_file).expect("provision.py wrote no env file");
        let _ = std::fs::remove_file(&env_file);
        aws.policies = std::fs::read_to_string(&policies_file).expect("provision.py wrote no policy file");
        let _ = std::fs::remove_file(&policies_file);
        aws.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        aws
    }

    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("provision.py resolved no {name}"))
    }

    /// An SDK configuration for moto's services (SQS, SES, Secrets Manager).
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_at(&self.endpoint).await
    }

    /// An SDK configuration for DynamoDB Local.
    pub async fn dynamodb_sdk(&self) -> aws_config::SdkConfig {
        sdk_at(&self.dynamodb_endpoint).await
    }

    /// The local stack's IAM gate in front of this test's DynamoDB Local and moto, serving in this process: each
    /// function's calls (signed with its key, `LOCAL<Function>`) held to its policy in the template. Its URL.
    pub async fn iam_gate(&self) -> String {
        let policies: iam_gate::Policies = serde_json::from_str(&self.policies).expect("the policy file");
        let gate = std::sync::Arc::new(iam_gate::Gate::new(
            policies,
            self.dynamodb_endpoint.clone(),
            self.endpoint.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, iam_gate::router(gate)).await });
        url
    }

    /// An SDK configuration that signs as `access_key` and sends everything to `endpoint` (the IAM gate).
    pub async fn sdk_as(&self, endpoint: &str, access_key: &str) -> aws_config::SdkConfig {
        sdk_signed(endpoint, access_key).await
    }

    /// The store our functions use, on this test's table.
    /// The retry queue of this test's moto.
    pub async fn queue(&self) -> tour_aws::sqs::SqsSyncQueue {
        tour_aws::sqs::SqsSyncQueue::new(&self.sdk().await, self.var("SYNC_QUEUE_URL"))
            .with_messages(self.var("NOTIFY_QUEUE_URL"))
    }

    pub async fn store(&self) -> tour_aws::dynamo::DynamoStore {
        tour_aws::dynamo::DynamoStore::new(&self.dynamodb_sdk().await, self.var("TABLE_NAME"))
    }

    /// The same store, with every request it sends to DynamoDB counted.
    pub async fn counted_store(&self) -> (tour_aws::dynamo::DynamoStore, CallCounter) {
        let counter = CallCounter::default();
        let config = aws_sdk_dynamodb::config::Builder::from(&self.dynamodb_sdk().await)
            .interceptor(counter.clone())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        (
            tour_aws::dynamo::DynamoStore::with_client(client, self.var("TABLE_NAME")),
            counter,
        )
    }
}

/// Counts the requests an AWS SDK client puts on the wire (each attempt of each call).
#[derive(Debug, Default, Clone)]
pub struct CallCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl CallCounter {
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_dynamodb::config::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

async fn sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    sdk_signed(endpoint, "testing").await
}

async fn sdk_signed(endpoint: &str, access_key: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            access_key, "testing", None, None, "local",
        ))
        .load()
        .await
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stores the demo properties (`infra/properties/demo.json`), as `make up` does.
pub async fn load_demo_properties(store: &tour_aws::dynamo::DynamoStore) {
    use tour_core::ports::PropertyStore;
    let text = std::fs::read_to_string(workspace_root().join("infra/properties/demo.json")).expect("demo properties");
    for property in tour_core::domain::property::parse_properties(&text).expect("valid demo properties") {
        store.save_property(&property).await.expect("property stored");
    }
}

/// A ResMan sandbox of our own, seeded with the demo properties.
/// The webhook's relays from a secret as written (a plain secret: one relay for every account).
pub fn relays_of(secret: &str) -> Vec<tour_core::domain::access::Relay> {
    tour_core::domain::access::Relay::parse_all(secret).expect("a valid relay secret")
}

pub async fn sandbox() -> RunningSandbox {
    sandbox_with(SandboxConfig::demo()).await
}

pub async fn sandbox_with(config: SandboxConfig) -> RunningSandbox {
    resman_sandbox::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("the ResMan sandbox did not start")
}

/// The gateway our functions use, pointed at a sandbox, with the sandbox's demo credentials.
pub fn resman_for(sandbox: &RunningSandbox, timeout: Duration) -> tour_aws::resman::HttpResMan {
    let mut settings = tour_aws::resman::ResManSettings::new(
        sandbox.base_url(),
        tour_aws::resman::ResManCredentials {
            integration_partner_id: "domiq-sandbox".into(),
            api_key: "sandbox-api-key".into(),
            account_id: 400,
        },
    );
    settings.timeout = timeout;
    tour_aws::resman::HttpResMan::new(settings).expect("HTTP client")
}

/// The booking use case's ports as the `book-tour` function wires them: one store for every storage port, three
/// ResMan attempts with back-off from `backoff`.
pub fn booking_deps<'a>(
    store: &'a tour_aws::dynamo::DynamoStore,
    resman: &'a tour_aws::resman::HttpResMan,
    queue: &'a tour_aws::sqs::SqsSyncQueue,
    backoff: Duration,
) -> tour_core::app::booking::BookingDeps<'a> {
    tour_core::app::booking::BookingDeps {
        properties: store,
        calendar: store,
        tours: store,
        holds: store,
        resman,
        queue,
        attempts: tour_core::app::sync::Attempts { count: 3, backoff },
        clock: &chrono::Utc::now,
    }
}

/// The chatbot's `PUT /api/resman/tours/{id}` with a JSON body, as `update-tour` wires it (one store for every
/// storage port).
pub async fn update_tour(
    store: &tour_aws::dynamo::DynamoStore,
    queue: &tour_aws::sqs::SqsSyncQueue,
    id: &str,
    body: &serde_json::Value,
    key: Option<&str>,
) -> Result<tour_core::app::lifecycle::Updated, tour_core::app::AppError> {
    let command = tour_core::domain::update::UpdateTourCommand::from_body(body.to_string().as_bytes())?;
    let deps = tour_core::app::lifecycle::UpdateDeps {
        properties: store,
        calendar: store,
        tours: store,
        queue,
    };
    tour_core::app::lifecycle::update_tour(&deps, id, &command, key, chrono::Utc::now()).await
}

/// What both sources of ResMan's changes write to, as the webhook and the poller wire it: one store for every
/// storage port, and the queue of the tours' side effects.
pub fn feed<'a>(
    store: &'a tour_aws::dynamo::DynamoStore,
    queue: &'a tour_aws::sqs::SqsSyncQueue,
) -> tour_core::app::changes::FeedDeps<'a> {
    tour_core::app::changes::FeedDeps {
        properties: store,
        calendar: store,
        tours: store,
        queue,
    }
}

/// A JSON answer of the sandbox's control surface (`/_sandbox/<path>`).
pub async fn sandbox_json(sandbox: &RunningSandbox, path: &str) -> serde_json::Value {
    reqwest::get(format!("{}/_sandbox/{path}", sandbox.base_url()))
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET /_sandbox/{path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET /_sandbox/{path} is not JSON: {e}"))
}

/// An invocation's time as a queue consumer has it: `seconds` from now, two kept back to answer, none started with
/// less than two left.
pub fn invocation(seconds: u64) -> tour_core::app::budget::TimeBudget {
    let two = Duration::from_secs(2);
    tour_core::app::budget::TimeBudget::lasting(Duration::from_secs(seconds), two, two)
}
