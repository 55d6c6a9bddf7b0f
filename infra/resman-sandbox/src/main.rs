//! `resman-sandbox`: serves the ResMan sandbox until Ctrl-C or SIGTERM.
//!
//! Flags win over environment variables, which win over the demo defaults. Flags are parsed by hand to
//! keep this dev tool's dependencies small.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use resman_sandbox::{Credentials, SandboxConfig, SeedError, WebhookTarget};

const USAGE: &str = "\
resman-sandbox: a stand-in for ResMan's partner API (development and tests only)

USAGE:
    resman-sandbox [OPTIONS]

OPTIONS:
    --host HOST             address to bind            [env SANDBOX_HOST, default 127.0.0.1]
    --port PORT             port to bind (0 = any)     [env SANDBOX_PORT, default 8091]
    --seed PATH             replace the embedded seed with this JSON array of properties
    --properties PATH       add the properties of this file (repeatable)
    --webhook-url URL       push staff changes here    [env SANDBOX_WEBHOOK_URL]
    --webhook-secret SECRET sign them with this secret [env SANDBOX_WEBHOOK_SECRET]
    -h, --help              print this help

CREDENTIALS (environment only):
    SANDBOX_INTEGRATION_PARTNER_ID  [default domiq-sandbox]
    SANDBOX_API_KEY                 [default sandbox-api-key]
    SANDBOX_ACCOUNT_ID              [default 400]

Logs go to stderr; the level comes from RUST_LOG (default info).";

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("--webhook-url and --webhook-secret go together")]
    HalfWebhook,
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("cannot serve")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Default)]
struct Args {
    host: Option<String>,
    port: Option<String>,
    seed: Option<PathBuf>,
    properties: Vec<PathBuf>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    help: bool,
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, CliError> {
    let mut args = Args::default();
    while let Some(arg) = raw.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            args.help = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| raw.next())
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--host" => args.host = Some(value()?),
            "--port" => args.port = Some(value()?),
            "--seed" => args.seed = Some(PathBuf::from(value()?)),
            "--properties" => args.properties.push(PathBuf::from(value()?)),
            "--webhook-url" => args.webhook_url = Some(value()?),
            "--webhook-secret" => args.webhook_secret = Some(value()?),
            _ => return Err(CliError::Usage(format!("unknown argument {flag:?}"))),
        }
    }
    Ok(args)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config_from(args: Args) -> Result<(SandboxConfig, SocketAddr), CliError> {
    let host = args
        .host
        .or_else(|| env("SANDBOX_HOST"))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let host: IpAddr = host.parse().map_err(|_| CliError::Invalid {
        name: "host",
        expected: "an IP address",
        value: host.clone(),
    })?;
    let port = args
        .port
        .or_else(|| env("SANDBOX_PORT"))
        .unwrap_or_else(|| "8091".to_owned());
    let port: u16 = port.parse().map_err(|_| CliError::Invalid {
        name: "port",
        expected: "a port number",
        value: port.clone(),
    })?;

    let mut config = SandboxConfig::demo();
    let demo = Credentials::demo();
    let account_id = match env("SANDBOX_ACCOUNT_ID") {
        Some(raw) => raw.trim().parse().map_err(|_| CliError::Invalid {
            name: "SANDBOX_ACCOUNT_ID",
            expected: "an integer",
            value: raw.clone(),
        })?,
        None => demo.account_id,
    };
    config.credentials = Credentials {
        integration_partner_id: env("SANDBOX_INTEGRATION_PARTNER_ID").unwrap_or(demo.integration_partner_id),
        api_key: env("SANDBOX_API_KEY").unwrap_or(demo.api_key),
        account_id,
    };
    if let Some(seed) = &args.seed {
        config.properties.clear();
        config.load_properties(seed)?;
    }
    for path in &args.properties {
        config.load_properties(path)?;
    }
    let url = args.webhook_url.or_else(|| env("SANDBOX_WEBHOOK_URL"));
    let secret = args.webhook_secret.or_else(|| env("SANDBOX_WEBHOOK_SECRET"));
    config.webhook = match (url, secret) {
        (Some(url), Some(secret)) => Some(WebhookTarget { url, secret }),
        (None, None) => None,
        _ => return Err(CliError::HalfWebhook),
    };
    Ok((config, SocketAddr::new(host, port)))
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: Args) -> Result<(), CliError> {
    let (config, addr) = config_from(args)?;
    tracing::info!(
        properties = config.properties.len(),
        partner = %config.credentials.integration_partner_id,
        account_id = config.credentials.account_id,
        webhook = config.webhook.as_ref().map(|w| w.url.as_str()).unwrap_or("-"),
        "starting"
    );
    let sandbox = resman_sandbox::start(config, addr).await?;
    tracing::info!(base_url = %sandbox.base_url(), "ready");
    stop_signal().await;
    tracing::info!("shutting down");
    sandbox.shutdown().await;
    Ok(())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) if args.help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(args) => args,
        Err(e) => {
            eprintln!("resman-sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resman-sandbox: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, CliError> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_take_a_separate_or_an_inline_value() {
        let parsed = args(&[
            "--host",
            "0.0.0.0",
            "--port=9000",
            "--properties",
            "a.json",
            "--properties=b.json",
        ])
        .expect("valid");
        assert_eq!(parsed.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(parsed.port.as_deref(), Some("9000"));
        assert_eq!(
            parsed.properties,
            vec![PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
    }

    #[test]
    fn unknown_flags_and_missing_values_are_usage_errors() {
        assert!(matches!(args(&["--verbose"]), Err(CliError::Usage(_))));
        assert!(matches!(args(&["--port"]), Err(CliError::Usage(_))));
    }
}
