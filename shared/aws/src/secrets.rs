//! Secrets Manager: read a secret's string once per cold start. Values never reach a log or an error message.

use crate::ConfigError;
use tour_core::domain::rotation::KeyRing;

#[derive(Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }

    pub async fn string(&self, arn: &str) -> Result<String, ConfigError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| ConfigError::Secret {
                arn: arn.to_owned(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            })?;
        out.secret_string.ok_or_else(|| ConfigError::Secret {
            arn: arn.to_owned(),
            reason: "the secret holds no string".into(),
        })
    }
}

impl SecretsManager {
    /// Stores `value` as the secret `name`'s current value, creating the secret when there is none.
    pub async fn put_string(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let failed = |e: String| ConfigError::Secret {
            arn: name.to_owned(),
            reason: e,
        };
        let created = self.client.create_secret().name(name).secret_string(value).send().await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => self
                .client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())),
            Err(e) => Err(failed(
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )),
        }
    }

    /// The secret's string, or `None` when no secret has that name or ARN.
    pub async fn string_if_exists(&self, id: &str) -> Result<Option<String>, ConfigError> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => Ok(out.secret_string),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(ConfigError::Secret {
                arn: id.to_owned(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            }),
        }
    }
}

/// Each ResMan account's credentials, one secret per account named `<prefix><AccountID>` holding JSON
/// `{"account_id": 401, "api_key": "..."}` (`api_key` optional: without it the partner key is used). Read when an
/// account is first needed and held for `keep` (a rotated key is picked up within that); an account without a
/// secret is not remembered, so one added by an operator is found at once.
pub struct AccountSecrets {
    secrets: SecretsManager,
    prefix: String,
    keep: std::time::Duration,
    held: tokio::sync::Mutex<
        std::collections::HashMap<
            tour_core::domain::resman::ResManAccountId,
            (crate::resman::AccountCredentials, std::time::Instant),
        >,
    >,
}

impl AccountSecrets {
    pub fn new(secrets: SecretsManager, prefix: impl Into<String>, keep: std::time::Duration) -> Self {
        Self {
            secrets,
            prefix: prefix.into(),
            keep,
            held: tokio::sync::Mutex::default(),
        }
    }

    /// The secret that holds an account's credentials.
    pub fn secret_name(&self, account: tour_core::domain::resman::ResManAccountId) -> String {
        format!("{}{account}", self.prefix)
    }
}

#[async_trait::async_trait]
impl crate::resman::AccountKeys for AccountSecrets {
    async fn credentials(
        &self,
        account: tour_core::domain::resman::ResManAccountId,
    ) -> Result<crate::resman::AccountCredentials, crate::resman::AccountKeyError> {
        use crate::ClassifyName;
        use crate::resman::AccountKeyError;
        if let Some((credentials, at)) = self.held.lock().await.get(&account)
            && at.elapsed() < self.keep
        {
            return Ok(credentials.clone());
        }
        let name = self.secret_name(account);
        let raw = self
            .secrets
            .string_if_exists(&name)
            .await
            .map_err(|e| AccountKeyError::Unavailable {
                account,
                reason: e.to_string(),
            })?
            .ok_or_else(|| AccountKeyError::Missing {
                account,
                reason: format!("there is no secret {name}"),
            })?;
        let credentials: crate::resman::AccountCredentials =
            serde_json::from_str(&raw).map_err(|e| AccountKeyError::Missing {
                account,
                reason: format!(
                    "secret {name} is not JSON {{\"account_id\": ..., \"api_key\": ...}} ({})",
                    e.classify_name()
                ),
            })?;
        self.held
            .lock()
            .await
            .insert(account, (credentials.clone(), std::time::Instant::now()));
        Ok(credentials)
    }
}

/// A secret that may rotate: read at cold start, read again at most every `every` when it is used, and kept as a
/// [`KeyRing`], so a value the secret no longer holds is still accepted for the ring's grace. A failed read keeps
/// the ring as it was (and is tried again after `every`): rotation never turns into an outage.
pub struct RotatingSecret {
    source: Option<(SecretsManager, String)>,
    parse: fn(&str) -> Result<Vec<Vec<u8>>, String>,
    every: chrono::Duration,
    state: tokio::sync::Mutex<(KeyRing, chrono::DateTime<chrono::Utc>)>,
}

impl RotatingSecret {
    /// Reads the secret `arn` once (a secret that cannot be read or parsed fails the cold start, naming it).
    pub async fn load(
        secrets: &SecretsManager,
        arn: &str,
        parse: fn(&str) -> Result<Vec<Vec<u8>>, String>,
        every: chrono::Duration,
        grace: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, ConfigError> {
        let values = parse(&secrets.string(arn).await?).map_err(|reason| ConfigError::Secret {
            arn: arn.to_owned(),
            reason,
        })?;
        Ok(Self {
            source: Some((secrets.clone(), arn.to_owned())),
            parse,
            every,
            state: tokio::sync::Mutex::new((KeyRing::new(values, grace), now)),
        })
    }

    /// Values that never change (tests, and tools given a secret directly).
    pub fn fixed(values: Vec<Vec<u8>>) -> Self {
        Self {
            source: None,
            parse: |_| Ok(Vec::new()),
            every: chrono::Duration::MAX,
            state: tokio::sync::Mutex::new((
                KeyRing::new(values, chrono::Duration::zero()),
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
            )),
        }
    }

    /// The ring as of `now`, read again from Secrets Manager when the last read is `every` old.
    pub async fn ring(&self, now: chrono::DateTime<chrono::Utc>) -> KeyRing {
        let mut state = self.state.lock().await;
        if let Some((secrets, arn)) = &self.source
            && now - state.1 >= self.every
        {
            match secrets.string(arn).await.map(|raw| (self.parse)(&raw)) {
                Ok(Ok(values)) => state.0.refresh(values, now),
                Ok(Err(reason)) => {
                    tracing::warn!(arn = %arn, reason = %reason, "the secret's new value is not valid; the previous values stay")
                }
                Err(e) => tracing::warn!(error = %e, "the secret could not be read again; the previous values stay"),
            }
            state.1 = now;
        }
        state.0.clone()
    }
}

/// The API keys (see [`tour_core::domain::access::Credential::parse_all`]), each one value of the rotating secret.
pub fn key_list(raw: &str) -> Result<Vec<Vec<u8>>, String> {
    tour_core::domain::access::Credential::parse_all(raw).map(|keys| keys.iter().map(|k| k.to_value()).collect())
}

/// The webhook's relays (see [`tour_core::domain::access::Relay::parse_all`]), each one value of the rotating secret.
pub fn relay_list(raw: &str) -> Result<Vec<Vec<u8>>, String> {
    tour_core::domain::access::Relay::parse_all(raw).map(|relays| relays.iter().map(|r| r.to_value()).collect())
}

/// A plain string of 16 characters or more (an HMAC secret).
pub fn hmac_secret(raw: &str) -> Result<Vec<Vec<u8>>, String> {
    if raw.len() < 16 {
        return Err("shorter than 16 characters".into());
    }
    Ok(vec![raw.as_bytes().to_vec()])
}
