//! The webhook signature: `X-ResMan-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
//! Pure: the caller passes the secret, the raw body and `now`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from `now`, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is not of the form t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The header value for `body` signed at `timestamp` (what a sender puts in `X-ResMan-Signature`).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// The header value signed with each of `secrets` (`t=<t>,v1=<one>,v1=<two>`): while a secret rotates, a receiver
/// that knows either one verifies it.
pub fn sign_with_each<'a>(secrets: impl IntoIterator<Item = &'a [u8]>, timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, timestamp, body).finalize().into_bytes()));
    }
    header
}

/// [`verify`] against each of `secrets` (a rotating secret's current and retired values): any one that matches.
pub fn verify_any<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut outcome = Err(SignatureError::Mismatch);
    for secret in secrets {
        match verify(secret, header, body, now) {
            Ok(()) => return Ok(()),
            Err(SignatureError::Mismatch) => {}
            // Missing, malformed or stale whatever the secret: say so.
            Err(other) => return Err(other),
        }
        outcome = Err(SignatureError::Mismatch);
    }
    outcome
}

/// Checks a header against the raw body; constant-time on the digest.
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now: DateTime<Utc>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let matches = candidates
        .iter()
        .any(|candidate| mac(secret, timestamp, body).verify_slice(candidate).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &[u8] = b"whsec_test";

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(SECRET, now().timestamp(), b"{\"a\":1}");
        assert_eq!(verify(SECRET, Some(&header), b"{\"a\":1}", now()), Ok(()));
    }

    #[test]
    fn known_vector_matches_an_independent_hmac() {
        // HMAC-SHA256(key="key", "1.x"), computed independently with Python's hmac module.
        assert_eq!(
            sign(b"key", 1, b"x"),
            "t=1,v1=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
    }

    #[test]
    fn a_changed_body_or_wrong_secret_is_a_mismatch() {
        let header = sign(SECRET, now().timestamp(), b"body");
        assert_eq!(
            verify(SECRET, Some(&header), b"body!", now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&header), b"body", now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_or_future_timestamps_are_stale() {
        let old = sign(SECRET, now().timestamp() - 301, b"b");
        let future = sign(SECRET, now().timestamp() + 301, b"b");
        let edge = sign(SECRET, now().timestamp() - 300, b"b");
        assert_eq!(verify(SECRET, Some(&old), b"b", now()), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(&future), b"b", now()), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(&edge), b"b", now()), Ok(()));
    }

    #[test]
    fn missing_or_garbled_headers_are_refused() {
        assert_eq!(verify(SECRET, None, b"b", now()), Err(SignatureError::Missing));
        for bad in ["", "v1=00", "t=abc,v1=00", "t=1800000000", "t=1800000000,v1=zz"] {
            assert_eq!(
                verify(SECRET, Some(bad), b"b", now()),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn while_a_secret_rotates_either_value_verifies_a_header_signed_with_both() {
        let (old, new): (&[u8], &[u8]) = (b"old-secret-0123456789", b"new-secret-0123456789");
        let header = sign_with_each([new, old], now().timestamp(), b"body");
        assert_eq!(verify(old, Some(&header), b"body", now()), Ok(()));
        assert_eq!(verify(new, Some(&header), b"body", now()), Ok(()));
        let signed_old = sign(old, now().timestamp(), b"body");
        assert_eq!(verify_any([new, old], Some(&signed_old), b"body", now()), Ok(()));
        assert_eq!(
            verify_any([new], Some(&signed_old), b"body", now()),
            Err(SignatureError::Mismatch),
            "the old secret's grace is over"
        );
        assert_eq!(
            verify_any([new, old], None, b"body", now()),
            Err(SignatureError::Missing)
        );
    }
}
