//! `iam-gate --port PORT --policies FILE --dynamodb URL --others URL [--sms URL]`: serves the local stack's IAM check until
//! Ctrl-C or SIGTERM. Prints `listening on 127.0.0.1:PORT` when ready. Logs go to stderr (RUST_LOG, default info).

use iam_gate::{Gate, Policies, router};
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: iam-gate --port PORT --policies FILE --dynamodb URL --others URL [--sms URL]";

struct Args {
    port: u16,
    policies: String,
    dynamodb: String,
    others: String,
    sms: Option<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut port, mut policies, mut dynamodb, mut others, mut sms) = (None, None, None, None, None);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| format!("--port {value:?} is not a port"))?,
                )
            }
            "--policies" => policies = Some(value),
            "--dynamodb" => dynamodb = Some(value),
            "--others" => others = Some(value),
            "--sms" => sms = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    match (port, policies, dynamodb, others) {
        (Some(port), Some(policies), Some(dynamodb), Some(others)) => Ok(Args {
            port,
            policies,
            dynamodb,
            others,
            sms,
        }),
        _ => Err("every flag is needed".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let policies: Policies = match std::fs::read(&args.policies)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(policies) => policies,
        Err(problem) => {
            eprintln!("cannot read the policy file {}: {problem}", args.policies);
            return ExitCode::FAILURE;
        }
    };
    let functions = policies.principals.len();
    let gate = Gate::new(policies, args.dynamodb, args.others);
    let gate = Arc::new(match args.sms {
        Some(sms) => gate.with_sms(sms),
        None => gate,
    });
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {error}", args.port);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!("listening on {address} ({functions} functions' policies)");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match axum::serve(listener, router(gate))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("the gate stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
