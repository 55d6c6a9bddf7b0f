//! Self-service links: a prospect's email carries signed links to reschedule or cancel their tour and, after it, to
//! rate it. A token names one tour and one purpose, the version of the tour it was issued for, and when it expires;
//! an HMAC-SHA256 over all of that under the stack's link secret makes it unforgeable. Pure: the caller passes the
//! key and `now`. Whether the tour still allows what the token asks (not cancelled, not used) is the use case's
//! business (`app::self_service`), since it needs the tour as it now stands.

use super::{InvalidField, lifecycle::ChangeSource};
use super::{ids::BookingId, record::TourRecord};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// See the tour, move it to a free time, or cancel it: until the tour starts.
    Manage,
    /// Rate the tour once, after it: for [`RATING_WINDOW`] after it ends.
    Rate,
    /// The leasing team's read-only view of the tour (the link in a staff alert): for [`STAFF_WINDOW`] after it.
    Staff,
    /// The leasing team's rating of the booking ("was this booking useful?"), once per tour, from a staff alert or
    /// the weekly digest: for [`STAFF_WINDOW`] after the tour.
    StaffRate,
}

impl LinkPurpose {
    fn letter(self) -> &'static str {
        match self {
            Self::Manage => "m",
            Self::Rate => "r",
            Self::Staff => "s",
            Self::StaffRate => "q",
        }
    }
}

/// How long after a tour its rating links work.
pub const RATING_WINDOW: Duration = Duration::days(30);
/// How long after a tour the staff alert's link to it works.
pub const STAFF_WINDOW: Duration = Duration::days(30);

/// A verified (or freshly issued) token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub booking_id: BookingId,
    pub purpose: LinkPurpose,
    /// The tour's version when the email was written: a change the prospect made through a link after it makes
    /// this token used.
    pub version: u64,
    /// Unix seconds after which the link no longer works.
    pub expires: i64,
}

/// Why a link is refused: `Forged` and `Expired` from the token alone, the others from the tour as it now stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    #[error("this link is not one we sent")]
    Forged,
    #[error("this link has expired: it worked until the tour's start")]
    Expired,
    #[error("this link was used already; the email about that change has a new one")]
    Used,
    #[error("this tour was cancelled")]
    Cancelled,
    #[error("this tour is over")]
    Over,
}

impl LinkProblem {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Used => "used",
            Self::Cancelled => "cancelled",
            Self::Over => "over",
        }
    }
}

/// The stack's link secret (from Secrets Manager). Never logged.
#[derive(Clone)]
pub struct LinkKey(Vec<u8>);

impl LinkKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, InvalidField> {
        let secret = secret.into();
        if secret.len() < 16 {
            return Err(InvalidField::new("LINK_SECRET", "must be at least 16 bytes"));
        }
        Ok(Self(secret))
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        // Domain separation: a link MAC can never be replayed as another signature made with the same secret.
        mac.update(b"tour-booking self-service link v1\x1f");
        mac.update(payload.as_bytes());
        mac
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkToken {
    /// The manage token for a tour as it now stands: it expires when the tour starts.
    pub fn manage(tour: &TourRecord) -> Self {
        Self {
            booking_id: tour.booking_id.clone(),
            purpose: LinkPurpose::Manage,
            version: tour.version,
            expires: tour.start.timestamp(),
        }
    }

    /// The rating token, for [`RATING_WINDOW`] after the tour.
    pub fn rate(tour: &TourRecord) -> Self {
        Self {
            booking_id: tour.booking_id.clone(),
            purpose: LinkPurpose::Rate,
            version: tour.version,
            expires: (tour.end + RATING_WINDOW).timestamp(),
        }
    }

    /// The staff view's token, for [`STAFF_WINDOW`] after the tour.
    pub fn staff(tour: &TourRecord) -> Self {
        Self {
            booking_id: tour.booking_id.clone(),
            purpose: LinkPurpose::Staff,
            version: tour.version,
            expires: (tour.end + STAFF_WINDOW).timestamp(),
        }
    }

    /// The staff rating's token, for [`STAFF_WINDOW`] after the tour.
    pub fn staff_rate(tour: &TourRecord) -> Self {
        Self {
            purpose: LinkPurpose::StaffRate,
            ..Self::staff(tour)
        }
    }

    fn payload(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.booking_id.as_str(),
            self.purpose.letter(),
            self.version,
            self.expires
        )
    }

    /// `<tour id>.<m|r>.<version>.<expires>.<hex HMAC>`: URL-safe as it is.
    pub fn encode(&self, key: &LinkKey) -> String {
        let payload = self.payload();
        let mac = hex::encode(key.mac(&payload).finalize().into_bytes());
        format!("{payload}.{mac}")
    }

    /// The token in `raw`, if it was made with `key` for `purpose` and has not expired. The digest is compared in
    /// constant time; a token that does not parse is as forged as one whose digest differs.
    pub fn verify(raw: &str, purpose: LinkPurpose, key: &LinkKey, now: DateTime<Utc>) -> Result<Self, LinkProblem> {
        if raw.len() > super::limits::LINK_TOKEN_CHARS {
            return Err(LinkProblem::Forged);
        }
        let (payload, mac) = raw.trim().rsplit_once('.').ok_or(LinkProblem::Forged)?;
        let mac = hex::decode(mac).map_err(|_| LinkProblem::Forged)?;
        key.mac(payload).verify_slice(&mac).map_err(|_| LinkProblem::Forged)?;
        let parts: Vec<&str> = payload.split('.').collect();
        let [booking, letter, version, expires] = parts[..] else {
            return Err(LinkProblem::Forged);
        };
        let token = Self {
            booking_id: BookingId::parse(booking).map_err(|_| LinkProblem::Forged)?,
            purpose: match letter {
                "m" => LinkPurpose::Manage,
                "r" => LinkPurpose::Rate,
                "s" => LinkPurpose::Staff,
                "q" => LinkPurpose::StaffRate,
                _ => return Err(LinkProblem::Forged),
            },
            version: version.parse().map_err(|_| LinkProblem::Forged)?,
            expires: expires.parse().map_err(|_| LinkProblem::Forged)?,
        };
        if token.purpose != purpose {
            return Err(LinkProblem::Forged);
        }
        if now.timestamp() >= token.expires {
            return Err(LinkProblem::Expired);
        }
        Ok(token)
    }

    /// Whether the prospect already changed the tour through a link since this token was issued: each change made
    /// through a link uses every link written before it (the email about that change carries fresh ones).
    pub fn used_by(&self, tour: &TourRecord) -> bool {
        tour.history
            .iter()
            .any(|entry| entry.source == ChangeSource::ProspectLink && entry.version > self.version)
    }
}

/// A satisfaction rating: 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    pub const ALL: [u8; 5] = [1, 2, 3, 4, 5];

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        raw.trim()
            .parse::<u8>()
            .ok()
            .and_then(|n| Self::try_from(n).ok())
            .ok_or_else(|| InvalidField::new("score", "must be a whole number from 1 to 5"))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Score {
    type Error = InvalidField;
    fn try_from(n: u8) -> Result<Self, InvalidField> {
        if (1..=5).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InvalidField::new("score", "must be a whole number from 1 to 5"))
        }
    }
}

impl From<Score> for u8 {
    fn from(s: Score) -> u8 {
        s.0
    }
}

/// A tour's rating as recorded (once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rating {
    pub score: Score,
    pub at: DateTime<Utc>,
}

/// What went wrong with a booking, as the leasing team may say beside a staff rating: a short list, so the answers
/// can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffIssue {
    /// The time did not suit the team.
    WrongTime,
    /// Details were missing or wrong (name, contact, what they want).
    MissingDetails,
    /// The prospect was not a fit (budget, move-in date, pets...).
    NotQualified,
    /// The prospect did not come.
    NoShow,
    /// Booked twice, or already booked with us.
    Duplicate,
    /// ResMan's calendar did not show it as we did.
    ResmanMismatch,
    Other,
}

impl StaffIssue {
    pub const ALL: [StaffIssue; 7] = [
        Self::WrongTime,
        Self::MissingDetails,
        Self::NotQualified,
        Self::NoShow,
        Self::Duplicate,
        Self::ResmanMismatch,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongTime => "wrong_time",
            Self::MissingDetails => "missing_details",
            Self::NotQualified => "not_qualified",
            Self::NoShow => "no_show",
            Self::Duplicate => "duplicate",
            Self::ResmanMismatch => "resman_mismatch",
            Self::Other => "other",
        }
    }

    /// The words the rating page shows.
    pub fn in_words(self) -> &'static str {
        match self {
            Self::WrongTime => "The time did not suit us",
            Self::MissingDetails => "Details were missing or wrong",
            Self::NotQualified => "The prospect was not a fit",
            Self::NoShow => "The prospect did not come",
            Self::Duplicate => "A duplicate of another booking",
            Self::ResmanMismatch => "ResMan's calendar did not match",
            Self::Other => "Something else",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        Self::ALL.into_iter().find(|i| i.as_str() == raw.trim()).ok_or_else(|| {
            InvalidField::new(
                "went_wrong",
                format!("must be one of {}", Self::ALL.map(Self::as_str).join(", ")),
            )
        })
    }
}

/// The leasing team's rating of a booking (once per tour), and what went wrong, when they said (once).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaffRating {
    pub score: Score,
    pub at: DateTime<Utc>,
    pub went_wrong: Vec<StaffIssue>,
}

impl StaffRating {
    /// A 4 or a 5: the booking was useful. The brief's goal is that over 90% of answers are.
    pub fn satisfied(&self) -> bool {
        self.score.get() >= 4
    }
}

/// Where the links point: the self-service page's address, and the key to sign with.
#[derive(Debug, Clone)]
pub struct Links {
    pub base_url: String,
    pub key: LinkKey,
}

impl Links {
    pub fn new(base_url: &str, key: LinkKey) -> Result<Self, InvalidField> {
        let base_url = base_url.trim().trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(InvalidField::new("SELF_SERVICE_URL", "must be an http(s):// address"));
        }
        Ok(Self {
            base_url: base_url.to_owned(),
            key,
        })
    }

    /// The page where the prospect sees, moves or cancels the tour.
    pub fn manage(&self, tour: &TourRecord) -> String {
        format!("{}?t={}", self.base_url, LinkToken::manage(tour).encode(&self.key))
    }

    /// The leasing team's view of the tour (read-only).
    pub fn staff(&self, tour: &TourRecord) -> String {
        format!("{}/staff?t={}", self.base_url, LinkToken::staff(tour).encode(&self.key))
    }

    /// One link per score, each a single click.
    pub fn rate(&self, tour: &TourRecord) -> Vec<(u8, String)> {
        self.scores("rate", &LinkToken::rate(tour))
    }

    /// The leasing team's rating of the booking: one link per score, each a single click.
    pub fn staff_rate(&self, tour: &TourRecord) -> Vec<(u8, String)> {
        self.scores("staff-rate", &LinkToken::staff_rate(tour))
    }

    fn scores(&self, page: &str, token: &LinkToken) -> Vec<(u8, String)> {
        let token = token.encode(&self.key);
        Score::ALL
            .iter()
            .map(|n| (*n, format!("{}/{page}?t={token}&score={n}", self.base_url)))
            .collect()
    }
}

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(unused_imports, dead_code))]
pub mod tests {
    use super::*;
    use crate::domain::lifecycle::TourChange;
    use crate::domain::lifecycle::TourStatus;
    use crate::domain::update::tests::tour;

    pub fn key() -> LinkKey {
        LinkKey::new(b"link-secret-for-tests-0123456789".to_vec()).unwrap()
    }

    fn before_start(t: &TourRecord) -> DateTime<Utc> {
        t.start - Duration::hours(1)
    }

    #[test]
    fn a_token_made_with_the_key_verifies_back_to_the_same_tour() {
        let t = tour(TourStatus::Scheduled);
        let raw = LinkToken::manage(&t).encode(&key());
        let token = LinkToken::verify(&raw, LinkPurpose::Manage, &key(), before_start(&t)).unwrap();
        assert_eq!(token, LinkToken::manage(&t));
        assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'));
    }

    #[test]
    fn a_changed_tour_version_expiry_purpose_or_key_is_forged() {
        let t = tour(TourStatus::Scheduled);
        let now = before_start(&t);
        let raw = LinkToken::manage(&t).encode(&key());
        let (payload, mac) = raw.rsplit_once('.').unwrap();
        let other = LinkToken {
            booking_id: BookingId::from_uuid(uuid::Uuid::from_u128(7)),
            ..LinkToken::manage(&t)
        };
        let tampered = [
            // Another tour, version or expiry under the first token's digest.
            format!("{}.{mac}", other.payload()),
            format!("{}.{mac}", payload.replace(".m.1.", ".m.2.")),
            format!("{}9.{mac}", payload),
            // A digest one digit off, cut short, or missing.
            format!(
                "{payload}.{}",
                mac.replacen(&mac[..1], if &mac[..1] == "0" { "1" } else { "0" }, 1)
            ),
            format!("{payload}.{}", &mac[..10]),
            payload.to_owned(),
            String::new(),
            "tour_x.m.1.1.zz".to_owned(),
        ];
        for raw in &tampered {
            assert_eq!(
                LinkToken::verify(raw, LinkPurpose::Manage, &key(), now),
                Err(LinkProblem::Forged),
                "{raw}"
            );
        }
        let other_key = LinkKey::new(b"another-secret-0123456789abcdef".to_vec()).unwrap();
        assert_eq!(
            LinkToken::verify(&raw, LinkPurpose::Manage, &other_key, now),
            Err(LinkProblem::Forged)
        );
        // A rating link cannot manage the tour, nor the other way round.
        let rate = LinkToken::rate(&t).encode(&key());
        assert_eq!(
            LinkToken::verify(&rate, LinkPurpose::Manage, &key(), now),
            Err(LinkProblem::Forged)
        );
        assert_eq!(
            LinkToken::verify(&raw, LinkPurpose::Rate, &key(), now),
            Err(LinkProblem::Forged)
        );
    }

    #[test]
    fn a_manage_link_expires_when_the_tour_starts_and_a_rating_link_a_month_after_it() {
        let t = tour(TourStatus::Scheduled);
        let raw = LinkToken::manage(&t).encode(&key());
        let verify = |now| LinkToken::verify(&raw, LinkPurpose::Manage, &key(), now);
        assert!(verify(t.start - Duration::seconds(1)).is_ok());
        assert_eq!(verify(t.start), Err(LinkProblem::Expired));
        let rate = LinkToken::rate(&t).encode(&key());
        let verify = |now| LinkToken::verify(&rate, LinkPurpose::Rate, &key(), now);
        assert!(verify(t.end + Duration::days(29)).is_ok());
        assert_eq!(verify(t.end + RATING_WINDOW), Err(LinkProblem::Expired));
    }

    #[test]
    fn a_change_made_through_a_link_uses_every_token_issued_before_it_and_no_other_change_does() {
        let mut t = tour(TourStatus::Scheduled);
        let token = LinkToken::manage(&t);
        let entry = |version, source| TourChange {
            version,
            at: t.start,
            source,
            status: TourStatus::Confirmed,
            start: t.start,
            agent: None,
            overrode: None,
            received: None,
        };
        t.history.push(entry(2, ChangeSource::ResmanPoll));
        t.history.push(entry(3, ChangeSource::Chatbot));
        assert!(!token.used_by(&t), "staff and chatbot changes leave the links working");
        t.history.push(entry(4, ChangeSource::ProspectLink));
        assert!(token.used_by(&t));
        t.version = 4;
        assert!(
            !LinkToken::manage(&t).used_by(&t),
            "the email about the change carries a fresh link"
        );
    }

    #[test]
    fn a_staff_rating_link_rates_the_booking_only_and_works_a_month_after_the_tour() {
        let t = tour(TourStatus::Scheduled);
        let links = Links::new("https://tours.example/tour", key()).unwrap();
        let rate = links.staff_rate(&t);
        assert_eq!(rate.len(), 5);
        let raw = rate[3]
            .1
            .strip_prefix("https://tours.example/tour/staff-rate?t=")
            .and_then(|r| r.strip_suffix("&score=4"))
            .unwrap();
        assert!(LinkToken::verify(raw, LinkPurpose::StaffRate, &key(), t.start - Duration::days(3)).is_ok());
        assert!(LinkToken::verify(raw, LinkPurpose::StaffRate, &key(), t.end + Duration::days(29)).is_ok());
        assert_eq!(
            LinkToken::verify(raw, LinkPurpose::StaffRate, &key(), t.end + STAFF_WINDOW),
            Err(LinkProblem::Expired)
        );
        for other in [LinkPurpose::Rate, LinkPurpose::Staff, LinkPurpose::Manage] {
            assert_eq!(
                LinkToken::verify(raw, other, &key(), t.start - Duration::days(3)),
                Err(LinkProblem::Forged),
                "a staff rating link is for that alone: {other:?}"
            );
        }
        let prospects = LinkToken::rate(&t).encode(&key());
        assert_eq!(
            LinkToken::verify(&prospects, LinkPurpose::StaffRate, &key(), t.end),
            Err(LinkProblem::Forged),
            "a prospect's rating link cannot rate as staff"
        );
    }

    #[test]
    fn what_went_wrong_is_one_of_a_short_list_and_four_or_five_is_satisfied() {
        for issue in StaffIssue::ALL {
            assert_eq!(StaffIssue::parse(issue.as_str()).unwrap(), issue);
            assert!(!issue.in_words().is_empty());
        }
        let err = StaffIssue::parse("rude").unwrap_err();
        assert_eq!(err.field, "went_wrong");
        assert!(err.reason.contains("wrong_time"), "{}", err.reason);
        let rating = |n| StaffRating {
            score: Score::try_from(n).unwrap(),
            at: Utc::now(),
            went_wrong: Vec::new(),
        };
        assert!(rating(4).satisfied() && rating(5).satisfied());
        assert!(!rating(3).satisfied() && !rating(1).satisfied());
    }

    #[test]
    fn scores_are_one_to_five() {
        assert_eq!(Score::parse("4").unwrap().get(), 4);
        for bad in ["0", "6", "", "x", "-1", "4.5", "256"] {
            assert_eq!(Score::parse(bad).unwrap_err().field, "score", "{bad}");
        }
    }

    #[test]
    fn links_point_at_the_page_with_a_token_per_purpose() {
        let t = tour(TourStatus::Completed);
        let links = Links::new("https://tours.example/tour/", key()).unwrap();
        let manage = links.manage(&t);
        let raw = manage.strip_prefix("https://tours.example/tour?t=").unwrap();
        assert!(LinkToken::verify(raw, LinkPurpose::Manage, &key(), t.start - Duration::minutes(1)).is_ok());
        let rate = links.rate(&t);
        assert_eq!(rate.len(), 5);
        assert!(rate[4].1.starts_with("https://tours.example/tour/rate?t=") && rate[4].1.ends_with("&score=5"));
        let staff = links.staff(&t);
        let raw = staff.strip_prefix("https://tours.example/tour/staff?t=").unwrap();
        assert!(LinkToken::verify(raw, LinkPurpose::Staff, &key(), t.end + Duration::days(29)).is_ok());
        assert_eq!(
            LinkToken::verify(raw, LinkPurpose::Manage, &key(), t.start - Duration::minutes(1)),
            Err(LinkProblem::Forged),
            "a staff link cannot change the tour"
        );
        assert!(Links::new("ftp://x", key()).is_err());
        assert!(LinkKey::new(b"short".to_vec()).is_err());
    }
}
