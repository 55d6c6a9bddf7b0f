//! Secrets that rotate without a redeploy: what a secret holds now is accepted, and so is what it held before, until
//! `grace` after the moment it was first seen gone. Pure: the caller reads the secret and passes `now`.

use chrono::{DateTime, Duration, Utc};

/// The values of one secret (API keys, an HMAC secret), current and lately retired.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    /// Each value, newest first, with the moment it was seen gone (`None` while the secret holds it).
    values: Vec<(Vec<u8>, Option<DateTime<Utc>>)>,
    grace: Duration,
}

impl KeyRing {
    /// The secret as first read.
    pub fn new(current: Vec<Vec<u8>>, grace: Duration) -> Self {
        Self {
            values: current.into_iter().map(|v| (v, None)).collect(),
            grace,
        }
    }

    /// The secret as read again at `now`: values it no longer holds are retired (accepted for `grace` more), values
    /// it holds again are current again, and values retired longer than `grace` are forgotten.
    pub fn refresh(&mut self, current: Vec<Vec<u8>>, now: DateTime<Utc>) {
        let mut next: Vec<(Vec<u8>, Option<DateTime<Utc>>)> = Vec::new();
        for value in &current {
            if !next.iter().any(|(v, _)| v == value) {
                next.push((value.clone(), None));
            }
        }
        for (value, retired) in self.values.drain(..) {
            let retired = retired.unwrap_or(now);
            if !current.contains(&value) && now - retired < self.grace {
                next.push((value, Some(retired)));
            }
        }
        self.values = next;
    }

    /// Every value accepted at `now`: the current ones, then the retired ones still inside their grace.
    pub fn accepted(&self, now: DateTime<Utc>) -> impl Iterator<Item = &[u8]> {
        self.values
            .iter()
            .filter(move |(_, retired)| retired.is_none_or(|at| now - at < self.grace))
            .map(|(value, _)| value.as_slice())
    }

    /// The value to sign with: the newest the secret holds.
    pub fn newest(&self) -> Option<&[u8]> {
        self.values
            .iter()
            .find(|(_, retired)| retired.is_none())
            .map(|(value, _)| value.as_slice())
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let retired = self.values.iter().filter(|(_, r)| r.is_some()).count();
        write!(f, "KeyRing({} current, {retired} retired)", self.values.len() - retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn accepted(ring: &KeyRing, now: DateTime<Utc>) -> Vec<String> {
        ring.accepted(now)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_rotated_value_is_accepted_beside_the_new_one_until_its_grace_ends() {
        let mut ring = KeyRing::new(vec![v("old")], Duration::seconds(60));
        ring.refresh(vec![v("new")], t(0));
        assert_eq!(accepted(&ring, t(0)), ["new", "old"]);
        assert_eq!(accepted(&ring, t(59)), ["new", "old"], "inside the grace");
        assert_eq!(accepted(&ring, t(60)), ["new"], "after it");
        assert_eq!(
            ring.newest(),
            Some(b"new".as_slice()),
            "signing moves to the new value at once"
        );
        ring.refresh(vec![v("new")], t(61));
        assert_eq!(
            format!("{ring:?}"),
            "KeyRing(1 current, 0 retired)",
            "forgotten, and never printed"
        );
    }

    #[test]
    fn the_grace_counts_from_when_the_value_was_first_seen_gone_and_a_returning_value_is_current_again() {
        let mut ring = KeyRing::new(vec![v("a"), v("b")], Duration::seconds(60));
        ring.refresh(vec![v("b")], t(0));
        ring.refresh(vec![v("b")], t(30));
        assert_eq!(
            accepted(&ring, t(59)),
            ["b", "a"],
            "a later read does not restart a's grace"
        );
        ring.refresh(vec![v("a"), v("b")], t(40));
        assert_eq!(accepted(&ring, t(500)), ["a", "b"], "put back: current again, once");
    }
}
