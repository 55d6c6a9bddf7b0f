//! The webhook signature: `X-ResMan-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
//! Pure: the caller passes the secret, the raw body and `now`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

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

/// At most this many `v1=` values are looked at. A sender signs with each secret it holds while one rotates (two),
/// so four leave room; a header with more is refused before anything is hashed.
pub const MAX_CANDIDATES: usize = 4;

/// A SHA-256 HMAC's length: a `v1=` value of any other length cannot match and is refused unhashed.
const DIGEST_BYTES: usize = 32;

/// A signature header, read: its timestamp and its candidate MACs (each one the length of a MAC, at most
/// [`MAX_CANDIDATES`] of them). Reading it hashes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    timestamp: i64,
    candidates: Vec<[u8; DIGEST_BYTES]>,
}

impl SignedHeader {
    pub fn parse(header: Option<&str>) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
                Some(("v1", v)) => {
                    if candidates.len() == MAX_CANDIDATES {
                        return Err(SignatureError::Malformed);
                    }
                    let mut digest = [0; DIGEST_BYTES];
                    hex::decode_to_slice(v, &mut digest).map_err(|_| SignatureError::Malformed)?;
                    candidates.push(digest);
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if candidates.is_empty() {
            return Err(SignatureError::Malformed);
        }
        Ok(Self { timestamp, candidates })
    }

    /// Whether the timestamp is within [`TOLERANCE_SECONDS`] of `now`, either way (any `i64` is safe here).
    fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now.timestamp().abs_diff(self.timestamp) <= TOLERANCE_SECONDS.unsigned_abs()
    }

    /// Whether `secret` signed `body` under this header: one HMAC, compared in constant time with each candidate.
    fn signed_by(&self, secret: &[u8], body: &[u8]) -> bool {
        let digest = mac(secret, self.timestamp, body).finalize().into_bytes();
        self.candidates.iter().fold(false, |found, candidate| {
            found | bool::from(candidate.ct_eq(digest.as_slice()))
        })
    }
}

/// [`verify`] against each of `secrets` (a rotating secret's current and retired values, or several senders'):
/// which one signed it. The header is read and its age checked before anything is hashed, then each secret costs
/// one HMAC, however many candidates the header holds.
pub fn verify_any<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<usize, SignatureError> {
    let header = SignedHeader::parse(header)?;
    if !header.is_fresh(now) {
        return Err(SignatureError::Stale);
    }
    secrets
        .into_iter()
        .position(|secret| header.signed_by(secret, body))
        .ok_or(SignatureError::Mismatch)
}

/// Checks a header against the raw body; constant-time on the digest.
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_any([secret], header, body, now).map(|_| ())
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
        let digest = "ab".repeat(32);
        let five = format!("t=1800000000{}", format!(",v1={digest}").repeat(5));
        let empty_then_real = format!("t=1800000000,v1=,v1={digest}");
        for bad in [
            "",
            "v1=00",
            "t=abc,v1=00",
            "t=1800000000",
            "t=1800000000,v1=zz",
            "t=1800000000,v1=",
            "t=1800000000,v1=00",
            &five,
            &empty_then_real,
        ] {
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
        assert_eq!(verify_any([new, old], Some(&signed_old), b"body", now()), Ok(1));
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

    #[test]
    fn any_timestamp_at_all_is_stale_or_fresh_never_an_overflow() {
        let digest = "00".repeat(32);
        for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
            let header = format!("t={t},v1={digest}");
            assert_eq!(
                verify(SECRET, Some(&header), b"b", now()),
                Err(SignatureError::Stale),
                "{t}"
            );
        }
    }

    #[test]
    fn a_header_stuffed_with_candidates_is_refused_before_any_hashing() {
        // 2,000 empty candidates, or 2,000 of the right length: both refused as malformed by the reading alone.
        let empties = format!("t={}{}", now().timestamp(), ",v1=".repeat(2000));
        let fulls = format!(
            "t={}{}",
            now().timestamp(),
            format!(",v1={}", "00".repeat(32)).repeat(2000)
        );
        for header in [empties, fulls] {
            assert_eq!(SignedHeader::parse(Some(&header)), Err(SignatureError::Malformed));
        }
        // Up to the limit, the right signature among wrong ones verifies.
        let right = sign(SECRET, now().timestamp(), b"b");
        let padded = format!(
            "{right}{}",
            format!(",v1={}", "00".repeat(32)).repeat(MAX_CANDIDATES - 1)
        );
        assert_eq!(verify(SECRET, Some(&padded), b"b", now()), Ok(()));
    }
}
