//! The chatbot's API key (`x-api-key`), compared in constant time with every configured key.

use subtle::ConstantTimeEq;

pub struct ApiKeys(Vec<Vec<u8>>);

impl ApiKeys {
    /// The keys a rotating secret accepts at `now`: the current ones and those inside their grace.
    pub fn accepted_by(ring: &crate::domain::rotation::KeyRing, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self(ring.accepted(now).map(<[u8]>::to_vec).collect())
    }

    pub fn new(keys: Vec<String>) -> Result<Self, &'static str> {
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .map(String::into_bytes)
            .filter(|k| !k.is_empty())
            .collect();
        if keys.is_empty() {
            return Err("no API key configured");
        }
        if keys.iter().any(|k| k.len() < 16) {
            return Err("an API key is shorter than 16 characters");
        }
        Ok(Self(keys))
    }

    /// Whether the presented key is one of ours. Every configured key is compared, so the time taken does not
    /// tell which key came close.
    pub fn accepts(&self, presented: Option<&[u8]>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        self.0
            .iter()
            .fold(false, |found, key| found | bool::from(key.as_slice().ct_eq(presented)))
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(vec!["first-key-0123456789".into(), "second-key-0123456789".into()]).unwrap()
    }

    #[test]
    fn any_configured_key_is_accepted() {
        assert!(keys().accepts(Some(b"first-key-0123456789")));
        assert!(keys().accepts(Some(b"second-key-0123456789")));
    }

    #[test]
    fn missing_wrong_or_prefix_keys_are_refused() {
        assert!(!keys().accepts(None));
        assert!(!keys().accepts(Some(b"")));
        assert!(!keys().accepts(Some(b"first-key-012345678")));
        assert!(!keys().accepts(Some(b"first-key-01234567890")));
    }

    #[test]
    fn short_or_absent_keys_cannot_be_configured() {
        assert!(ApiKeys::new(vec![]).is_err());
        assert!(ApiKeys::new(vec!["short".into()]).is_err());
        assert_eq!(format!("{:?}", keys()), "ApiKeys(2 configured)");
    }
}
