//! Configuration, read once per cold start: plain settings from environment variables (set by `template.yaml`,
//! or locally by the stack from the same template), secrets from Secrets Manager by the ARNs those variables name.

use std::time::Duration;
use tour_aws::dynamo::DynamoStore;
use tour_aws::resman::{ResManCredentials, ResManSettings};
use tour_aws::secrets::{RotatingSecret, SecretsManager};

pub use tour_aws::ConfigError;

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

pub fn optional_number(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u32>().map_err(|_| ConfigError::Invalid {
            name,
            reason: "must be a whole number".into(),
        }),
    }
}

pub fn optional_seconds(name: &'static str, default: u32) -> Result<Duration, ConfigError> {
    optional_number(name, default).map(|s| Duration::from_secs(s.into()))
}

/// A whole-number setting (`default` when unset) made into the domain's type by `make`, whose refusal says why.
pub fn checked<T>(
    name: &'static str,
    default: u32,
    make: impl FnOnce(u32) -> Result<T, tour_core::domain::InvalidField>,
) -> Result<T, ConfigError> {
    make(optional_number(name, default)?).map_err(|e| ConfigError::Invalid { name, reason: e.reason })
}

/// The AWS SDK configuration. Locally `AWS_ENDPOINT_URL` points it at moto and `AWS_ENDPOINT_URL_DYNAMODB` at
/// DynamoDB Local.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// ResMan's address and credentials (`RESMAN_BASE_URL`, `RESMAN_CREDENTIALS_SECRET_ARN`: JSON
/// `{"integration_partner_id","api_key","account_id"}`), with `RESMAN_TIMEOUT_SECONDS` (default 30).
pub async fn resman(secrets: &SecretsManager) -> Result<ResManSettings, ConfigError> {
    let base_url = required("RESMAN_BASE_URL")?;
    let arn = required("RESMAN_CREDENTIALS_SECRET_ARN")?;
    let credentials: ResManCredentials =
        serde_json::from_str(&secrets.string(&arn).await?).map_err(|e| ConfigError::Secret {
            arn: arn.clone(),
            reason: format!("not the expected JSON ({})", tour_aws::ClassifyName::classify_name(&e)),
        })?;
    let mut settings = ResManSettings::new(base_url, credentials);
    settings.timeout = optional_seconds("RESMAN_TIMEOUT_SECONDS", 30)?;
    if let Ok(event_type) = required("RESMAN_TOUR_EVENT_TYPE") {
        settings.tour_event_type = event_type;
    }
    Ok(settings)
}

/// Each ResMan account's credentials: one secret per account, named `RESMAN_ACCOUNT_SECRET_PREFIX` (default
/// `tour-booking/resman/accounts/`) followed by the `AccountID`, held for `RESMAN_ACCOUNT_KEYS_SECONDS` (default 300).
pub fn resman_accounts(secrets: &SecretsManager) -> Result<tour_aws::secrets::AccountSecrets, ConfigError> {
    let prefix = std::env::var("RESMAN_ACCOUNT_SECRET_PREFIX")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "tour-booking/resman/accounts/".to_owned());
    Ok(tour_aws::secrets::AccountSecrets::new(
        secrets.clone(),
        prefix,
        optional_seconds("RESMAN_ACCOUNT_KEYS_SECONDS", 300)?,
    ))
}

/// The ResMan adapter for `settings`, reaching every account through its own credentials.
pub fn resman_client(
    secrets: &SecretsManager,
    settings: ResManSettings,
) -> Result<tour_aws::resman::HttpResMan, ConfigError> {
    let accounts = resman_accounts(secrets)?;
    tour_aws::resman::HttpResMan::new(settings)
        .map(|client| client.with_accounts(std::sync::Arc::new(accounts)))
        .map_err(|e| ConfigError::Invalid {
            name: "RESMAN_BASE_URL",
            reason: e.to_string(),
        })
}

/// How often a rotating secret is read again (`SECRET_REFRESH_SECONDS`, default 60) and how long a value it no
/// longer holds is still accepted (`SECRET_GRACE_SECONDS`, default 3600).
fn rotation() -> Result<(chrono::Duration, chrono::Duration), ConfigError> {
    let every = optional_number("SECRET_REFRESH_SECONDS", 60)?;
    let grace = optional_number("SECRET_GRACE_SECONDS", 3600)?;
    Ok((
        chrono::Duration::seconds(every.into()),
        chrono::Duration::seconds(grace.into()),
    ))
}

async fn rotating(
    secrets: &SecretsManager,
    arn_variable: &'static str,
    parse: fn(&str) -> Result<Vec<Vec<u8>>, String>,
) -> Result<RotatingSecret, ConfigError> {
    let (every, grace) = rotation()?;
    RotatingSecret::load(
        secrets,
        &required(arn_variable)?,
        parse,
        every,
        grace,
        chrono::Utc::now(),
    )
    .await
}

/// The chatbot's API keys (`API_KEYS_SECRET_ARN`: a JSON array of strings), rotating: a key added is accepted at
/// the next read, a key removed for `SECRET_GRACE_SECONDS` more.
pub async fn api_keys(secrets: &SecretsManager) -> Result<RotatingSecret, ConfigError> {
    rotating(secrets, "API_KEYS_SECRET_ARN", tour_aws::secrets::key_list).await
}

/// An HMAC secret: the plain string, of 16 characters or more, in the secret that the variable `arn_variable` names.
async fn hmac_secret(secrets: &SecretsManager, arn_variable: &'static str) -> Result<Vec<u8>, ConfigError> {
    let arn = required(arn_variable)?;
    let raw = secrets.string(&arn).await?;
    tour_aws::secrets::hmac_secret(&raw)
        .map(|mut values| values.remove(0))
        .map_err(|reason| ConfigError::Secret { arn, reason })
}

/// The webhook's relays (`WEBHOOK_SECRET_ARN`: a JSON array of `{"name", "accounts", "secret"}`, or one plain secret
/// for every account), rotating as the API keys do: during the grace, a notice signed with a relay's previous secret
/// is still accepted.
pub async fn webhook_relays(secrets: &SecretsManager) -> Result<RotatingSecret, ConfigError> {
    rotating(secrets, "WEBHOOK_SECRET_ARN", tour_aws::secrets::relay_list).await
}

/// The key that signs the prospects' self-service links (`LINK_SECRET_ARN`: a plain string of 16 characters or
/// more). Rotating it voids every link already sent.
pub async fn link_key(secrets: &SecretsManager) -> Result<tour_core::domain::link::LinkKey, ConfigError> {
    let secret = hmac_secret(secrets, "LINK_SECRET_ARN").await?;
    tour_core::domain::link::LinkKey::new(secret).map_err(|e| ConfigError::Invalid {
        name: "LINK_SECRET_ARN",
        reason: e.reason,
    })
}

/// Where the prospects' links point (`SELF_SERVICE_URL`, the page's address) and the key that signs them.
pub async fn links(secrets: &SecretsManager) -> Result<tour_core::domain::link::Links, ConfigError> {
    let base = required("SELF_SERVICE_URL")?;
    tour_core::domain::link::Links::new(&base, link_key(secrets).await?).map_err(|e| ConfigError::Invalid {
        name: "SELF_SERVICE_URL",
        reason: e.reason,
    })
}

/// The chatbot's change callbacks, when `CHATBOT_CALLBACK_URL` is set: signed with the secret that
/// `CALLBACK_SECRET_ARN` names (a plain string of 16 characters or more), each call bounded by
/// `CALLBACK_TIMEOUT_SECONDS` (default 5).
pub async fn callbacks(secrets: &SecretsManager) -> Result<Option<tour_aws::callback::HttpCallbacks>, ConfigError> {
    let Ok(url) = required("CHATBOT_CALLBACK_URL") else {
        return Ok(None);
    };
    let secret = rotating(secrets, "CALLBACK_SECRET_ARN", tour_aws::secrets::hmac_secret).await?;
    let timeout = optional_seconds("CALLBACK_TIMEOUT_SECONDS", 5)?;
    let outbound = tour_aws::outbound::Outbound::from_env();
    tour_aws::callback::HttpCallbacks::new(&url, secret, timeout, outbound)
        .map(Some)
        .map_err(|reason| ConfigError::Invalid {
            name: "CHATBOT_CALLBACK_URL",
            reason,
        })
}

/// What every function builds first at cold start: its JSON logging, the AWS SDK configuration, Secrets Manager.
pub struct ColdStart {
    pub sdk: aws_config::SdkConfig,
    pub secrets: SecretsManager,
}

impl ColdStart {
    pub async fn begin() -> Self {
        crate::telemetry::init();
        let sdk = aws().await;
        let secrets = SecretsManager::new(&sdk);
        Self { sdk, secrets }
    }

    /// The table (`TABLE_NAME`), keeping prospects' personal data `PERSONAL_DATA_RETENTION_DAYS` (default 30) after
    /// their tour.
    pub fn store(&self) -> Result<DynamoStore, ConfigError> {
        let days = optional_number("PERSONAL_DATA_RETENTION_DAYS", 30)?;
        Ok(DynamoStore::new(&self.sdk, required("TABLE_NAME")?)
            .with_personal_data_retention(chrono::Duration::days(days.into())))
    }

    /// ResMan's address and credentials, as [`resman`] reads them.
    pub async fn resman_settings(&self) -> Result<ResManSettings, ConfigError> {
        resman(&self.secrets).await
    }

    /// The ResMan adapter for `settings`, reaching every account through its own credentials.
    pub fn resman(&self, settings: ResManSettings) -> Result<tour_aws::resman::HttpResMan, ConfigError> {
        resman_client(&self.secrets, settings)
    }

    /// SES v2 from `SENDER_EMAIL`, with `SES_CONFIGURATION_SET` when set, each send bounded by `SES_TIMEOUT_SECONDS`
    /// (default 5).
    pub fn mailer(&self) -> Result<tour_aws::ses::SesMailer, ConfigError> {
        Ok(tour_aws::ses::SesMailer::new(
            &self.sdk,
            required("SENDER_EMAIL")?,
            required("SES_CONFIGURATION_SET").ok(),
            self.mail_timeout()?,
        ))
    }

    /// The text service: AWS End User Messaging SMS from `SMS_ORIGINATION` (the phone pool's id or ARN), under
    /// `SMS_CONFIGURATION_SET` when set, each send bounded by `SMS_TIMEOUT_SECONDS` (default 5). A deployment without
    /// `SMS_ORIGINATION` (not registered for 10DLC yet) sends no text: each fails at once, and a reminder's email
    /// goes instead.
    pub fn texts(&self) -> Result<Box<dyn tour_core::ports::TextSender>, ConfigError> {
        let timeout = self.text_timeout()?;
        Ok(
            match required("SMS_ORIGINATION").ok().filter(|o| !o.trim().is_empty()) {
                Some(origination) => Box::new(tour_aws::sms::SmsTexts::new(
                    &self.sdk,
                    origination,
                    required("SMS_CONFIGURATION_SET").ok(),
                    timeout,
                )),
                None => Box::new(tour_aws::sms::NoTextService),
            },
        )
    }

    /// The longest one text send may take, retries included (`SMS_TIMEOUT_SECONDS`, default 5).
    pub fn text_timeout(&self) -> Result<Duration, ConfigError> {
        optional_seconds("SMS_TIMEOUT_SECONDS", 5)
    }

    /// The longest one SES send may take, retries included (`SES_TIMEOUT_SECONDS`, default 5).
    pub fn mail_timeout(&self) -> Result<Duration, ConfigError> {
        optional_seconds("SES_TIMEOUT_SECONDS", 5)
    }

    /// The prospects' links, as [`links`] reads them.
    pub async fn links(&self) -> Result<tour_core::domain::link::Links, ConfigError> {
        links(&self.secrets).await
    }

    /// What the change poller reads with: ResMan paced per account (at most `RESMAN_ACCOUNT_REQUESTS_PER_SECOND`,
    /// default 5 and at least 2, in any one second, however many workers run; a request waits at most 20 s for its
    /// moment), and how far back a property's first poll reads (`POLL_BACKFILL_SECONDS`, default 30 days).
    pub async fn poller(
        &self,
    ) -> Result<(tour_aws::resman::HttpResMan, tour_core::app::changes::PollSettings), ConfigError> {
        let resman = self.resman_settings().await?;
        let cap = optional_number("RESMAN_ACCOUNT_REQUESTS_PER_SECOND", 5)?;
        let rate = tour_core::domain::rate::Rate::at_most_per_second(cap).ok_or_else(|| ConfigError::Invalid {
            name: "RESMAN_ACCOUNT_REQUESTS_PER_SECOND",
            reason: "must be at least 2".into(),
        })?;
        let pacer = tour_core::app::pacing::AccountPacer {
            limiter: std::sync::Arc::new(self.store()?),
            rate,
            patience: chrono::Duration::seconds(20),
            clock: chrono::Utc::now,
        };
        let backfill = optional_seconds("POLL_BACKFILL_SECONDS", 30 * 24 * 3600)?;
        let settings = tour_core::app::changes::PollSettings {
            backfill: chrono::Duration::from_std(backfill).map_err(|e| ConfigError::Invalid {
                name: "POLL_BACKFILL_SECONDS",
                reason: e.to_string(),
            })?,
            tour_event_type: resman.tour_event_type.clone(),
            min_gap: chrono::Duration::seconds(10),
            ..Default::default()
        };
        Ok((self.resman(resman)?.with_pacer(std::sync::Arc::new(pacer)), settings))
    }

    /// The poll queue (`POLL_QUEUE_URL`): one message per property to poll.
    pub fn poll_queue(&self) -> Result<tour_aws::sqs::SqsPollQueue, ConfigError> {
        Ok(tour_aws::sqs::SqsPollQueue::new(&self.sdk, required("POLL_QUEUE_URL")?))
    }

    /// The outbox's queues: the tour sync queue (`SYNC_QUEUE_URL`) and the notification queue (`NOTIFY_QUEUE_URL`).
    pub fn sync_queue(&self) -> Result<tour_aws::sqs::SqsSyncQueue, ConfigError> {
        Ok(tour_aws::sqs::SqsSyncQueue::new(&self.sdk, required("SYNC_QUEUE_URL")?)
            .with_messages(required("NOTIFY_QUEUE_URL")?))
    }
}
