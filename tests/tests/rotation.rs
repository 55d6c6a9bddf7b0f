//! Keys that rotate without a redeploy, against Secrets Manager (moto): the chatbot's API key is replaced in the
//! secret while requests keep arriving with the old one; every one of them inside the grace is let in, the new key
//! at once, and the old key is refused once its grace is over.

use chrono::{Duration, Utc};
use integration_tests::LocalAws;
use tour_aws::secrets::{RotatingSecret, SecretsManager, key_list};
use tour_core::domain::access::Credential;
use tour_core::domain::rotation::KeyRing;

const OLD: &str = "old-chatbot-key-0123456789";
const NEW: &str = "new-chatbot-key-0123456789";
const GRACE: i64 = 60;

/// Whether the keys the ring accepts at `at` let `key` in.
fn accepts(ring: &KeyRing, key: &str, at: chrono::DateTime<Utc>) -> bool {
    Credential::from_values(ring.accepted(at))
        .identify(Some(key.as_bytes()))
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_api_key_keeps_working_for_its_grace_under_load_and_is_refused_after_it() {
    let keys_json = serde_json::json!([OLD]).to_string();
    let aws = LocalAws::start(&[], &[("ApiKeysSecretArn", &keys_json)]);
    let sdk = aws.sdk().await;
    let arn = aws.var("API_KEYS_SECRET_ARN").to_owned();
    let start = Utc::now();
    // Read again on every use (no refresh interval), so the rotation is seen by the very next request.
    let keys = std::sync::Arc::new(
        RotatingSecret::load(
            &SecretsManager::new(&sdk),
            &arn,
            key_list,
            Duration::zero(),
            Duration::seconds(GRACE),
            start,
        )
        .await
        .unwrap(),
    );

    // Requests with the old key, from eight callers at once, while the secret is rotated under them.
    let load: Vec<_> = (0..8)
        .map(|caller| {
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut refused = 0;
                for n in 0..40 {
                    let at = start + Duration::milliseconds(caller * 1000 + n * 100);
                    if !accepts(&keys.ring(at).await, OLD, at) {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::json!([NEW]).to_string())
        .send()
        .await
        .unwrap();
    let mut refused = 0;
    for caller in load {
        refused += caller.await.unwrap();
    }
    assert_eq!(refused, 0, "no 401 for the old key inside its grace");

    // The old key was first seen gone between `start` (the callers' first reads) and `start + 10 s` (the read below,
    // if no caller read after the rotation): it is let in until its grace ends, the new one at once.
    let seen = start + Duration::seconds(10);
    let ring = keys.ring(seen).await;
    assert!(accepts(&ring, NEW, seen), "the new key works at once");
    let last = start + Duration::seconds(GRACE - 1);
    assert!(accepts(&keys.ring(last).await, OLD, last), "still inside the grace");
    let after = seen + Duration::seconds(GRACE + 1);
    let ring = keys.ring(after).await;
    assert!(!accepts(&ring, OLD, after), "the old key is refused after its grace");
    assert!(accepts(&ring, NEW, after));
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_again_keeps_the_keys_it_had() {
    let keys_json = serde_json::json!([OLD]).to_string();
    let aws = LocalAws::start(&[], &[("ApiKeysSecretArn", &keys_json)]);
    let sdk = aws.sdk().await;
    let arn = aws.var("API_KEYS_SECRET_ARN").to_owned();
    let now = Utc::now();
    let keys = RotatingSecret::load(
        &SecretsManager::new(&sdk),
        &arn,
        key_list,
        Duration::zero(),
        Duration::seconds(GRACE),
        now,
    )
    .await
    .unwrap();
    // A bad value (a key too short) is refused, and the keys stay as they were.
    aws_sdk_secretsmanager::Client::new(&sdk)
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"["short"]"#)
        .send()
        .await
        .unwrap();
    let later = now + Duration::seconds(3 * GRACE);
    let ring = keys.ring(later).await;
    assert!(accepts(&ring, OLD, later));
    assert!(!accepts(&ring, "short", later));
}
