//! Secrets Manager: read a secret's string once per cold start. Values never reach a log or an error message.

use crate::config::ConfigError;

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
