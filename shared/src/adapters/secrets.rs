//! Secrets Manager: read a secret's string once per cold start. Values never reach a log or an error message.

use crate::config::ConfigError;
use crate::domain::rotation::KeyRing;

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

/// A JSON array of strings of 16 characters or more (the chatbot's API keys).
pub fn key_list(raw: &str) -> Result<Vec<Vec<u8>>, String> {
    let keys: Vec<String> = serde_json::from_str(raw).map_err(|_| "not a JSON array of strings".to_owned())?;
    let keys: Vec<Vec<u8>> = keys
        .into_iter()
        .filter(|k| !k.is_empty())
        .map(String::into_bytes)
        .collect();
    if keys.is_empty() {
        return Err("no API key configured".into());
    }
    if keys.iter().any(|k| k.len() < 16) {
        return Err("an API key is shorter than 16 characters".into());
    }
    Ok(keys)
}

/// A plain string of 16 characters or more (an HMAC secret).
pub fn hmac_secret(raw: &str) -> Result<Vec<Vec<u8>>, String> {
    if raw.len() < 16 {
        return Err("shorter than 16 characters".into());
    }
    Ok(vec![raw.as_bytes().to_vec()])
}
