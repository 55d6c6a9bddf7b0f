//! Consent to text messages. A prospect agrees in the conversation (the chatbot sends the words they were shown and
//! when they agreed, with the booking); a revocation (STOP and its like, by any reasonable means since the FCC's
//! April 2025 rule) is kept the same way. Both are kept per phone number and property as events: the latest decides,
//! and without a grant no text is ever sent. An erased number leaves only an opt-out marker, a digest.

use super::fields::{JsonObject, checked_text};
use super::{ConversationId, InvalidField, Phone, ResManPropertyId, limits};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How far ahead of our clock the chatbot's `agreed_at` may be (its clock and ours differ a little).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);
/// How old a consent given in the conversation may be when the booking carries it.
pub const MAX_AGE: Duration = Duration::days(30);

/// The prospect's agreement to texts about their tour, as the chatbot gives it with a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsConsent {
    /// The words the prospect was shown and agreed to.
    pub words: String,
    /// When they agreed.
    pub agreed_at: DateTime<Utc>,
}

impl SmsConsent {
    /// Reads `sms_consent` of a booking body: absent or `null` is no consent.
    pub fn from_body(object: &JsonObject) -> Result<Option<Self>, InvalidField> {
        let consent = match object.get("sms_consent") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::Object(consent)) => consent,
            Some(_) => {
                return Err(InvalidField::new(
                    "sms_consent",
                    "must be an object with words and agreed_at",
                ));
            }
        };
        let text = |name: &str, field: &'static str| match consent.get(name) {
            Some(serde_json::Value::String(text)) => Ok(text.as_str()),
            None | Some(serde_json::Value::Null) => Err(InvalidField::new(field, "is required")),
            Some(_) => Err(InvalidField::new(field, "must be a string")),
        };
        let words = checked_text(
            text("words", "sms_consent.words")?,
            "sms_consent.words",
            limits::CONSENT_WORDS_CHARS,
        )?;
        if words.is_empty() {
            return Err(InvalidField::new("sms_consent.words", "is required"));
        }
        let agreed_at = DateTime::parse_from_rfc3339(text("agreed_at", "sms_consent.agreed_at")?.trim())
            .map_err(|_| InvalidField::new("sms_consent.agreed_at", "must be an RFC 3339 time with its offset"))?
            .with_timezone(&Utc);
        Ok(Some(Self {
            words: words.to_owned(),
            agreed_at,
        }))
    }

    /// Whether the consent can stand at `now`: not given in the future, and not older than [`MAX_AGE`].
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), InvalidField> {
        if self.agreed_at > now + CLOCK_SKEW {
            return Err(InvalidField::new("sms_consent.agreed_at", "is in the future"));
        }
        if self.agreed_at < now - MAX_AGE {
            return Err(InvalidField::new(
                "sms_consent.agreed_at",
                format!("is more than {} days ago: ask the prospect again", MAX_AGE.num_days()),
            ));
        }
        Ok(())
    }
}

/// What a consent event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ConsentChange {
    /// Agreed to texts, having been shown `words`.
    Granted { words: String },
    /// Revoked, by the word or means named (`STOP`, `CANCEL`, ...).
    Revoked { by: String },
}

/// Where a consent event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ConsentSource {
    /// The chatbot's conversation, with the booking it came with.
    Conversation {
        conversation_id: ConversationId,
        booking_id: super::BookingId,
    },
    /// A text the prospect sent.
    TextReply,
    /// The text service refused a text because the number is on its opt-out list (the prospect texted STOP to the
    /// number, or an operator put it there).
    OptOutList,
}

/// One grant or revocation of a number's consent at a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    pub property_id: ResManPropertyId,
    pub phone: Phone,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: ConsentChange,
    #[serde(flatten)]
    pub source: ConsentSource,
}

impl ConsentEvent {
    /// The grant a booking carries.
    pub fn granted(
        property_id: ResManPropertyId,
        phone: Phone,
        consent: &SmsConsent,
        conversation_id: ConversationId,
        booking_id: super::BookingId,
    ) -> Self {
        Self {
            property_id,
            phone,
            at: consent.agreed_at,
            change: ConsentChange::Granted {
                words: consent.words.clone(),
            },
            source: ConsentSource::Conversation {
                conversation_id,
                booking_id,
            },
        }
    }
}

/// Where a number stands at a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsentState {
    /// Never agreed (or what they agreed to has lapsed with their personal data).
    None,
    Granted {
        since: DateTime<Utc>,
    },
    Revoked {
        since: DateTime<Utc>,
    },
    /// The number was erased on request: never texted again.
    OptedOut,
}

impl ConsentState {
    /// The latest event decides; at the same instant a revocation wins. An opted-out number stays so.
    pub fn of(events: &[ConsentEvent], opted_out: bool) -> Self {
        if opted_out {
            return Self::OptedOut;
        }
        let revoked = |e: &ConsentEvent| matches!(e.change, ConsentChange::Revoked { .. });
        match events.iter().max_by_key(|e| (e.at, revoked(e))) {
            None => Self::None,
            Some(e) if revoked(e) => Self::Revoked { since: e.at },
            Some(e) => Self::Granted { since: e.at },
        }
    }

    /// Whether a text may be sent.
    pub fn may_text(&self) -> bool {
        matches!(self, Self::Granted { .. })
    }

    /// Its name, as the API shows it.
    pub fn word(&self) -> ConsentWord {
        match self {
            Self::None => ConsentWord::None,
            Self::Granted { .. } => ConsentWord::Granted,
            Self::Revoked { .. } => ConsentWord::Revoked,
            Self::OptedOut => ConsentWord::OptedOut,
        }
    }

    /// When it was granted or revoked.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Granted { since } | Self::Revoked { since } => Some(*since),
            Self::None | Self::OptedOut => None,
        }
    }
}

/// A consent state's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentWord {
    None,
    Granted,
    Revoked,
    OptedOut,
}

/// The digest a number is kept under where the number itself must not be (the opt-out marker, the consent's key).
pub fn phone_digest(phone: &Phone) -> String {
    hex::encode(Sha256::digest(format!("sms:{}", phone.expose()).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    fn read(json: serde_json::Value) -> Result<Option<SmsConsent>, InvalidField> {
        SmsConsent::from_body(json.as_object().unwrap())
    }

    fn event(minutes: i64, change: ConsentChange) -> ConsentEvent {
        ConsentEvent {
            property_id: ResManPropertyId::parse("P-1").unwrap(),
            phone: Phone::parse("+15125550100").unwrap(),
            at: now() + Duration::minutes(minutes),
            change,
            source: ConsentSource::TextReply,
        }
    }

    #[test]
    fn a_consent_holds_the_words_shown_and_when_they_were_agreed_to() {
        let consent = read(serde_json::json!({"sms_consent": {
            "words": "  Text me about my tour. Reply STOP to stop.  ",
            "agreed_at": "2026-12-01T08:58:00-06:00"
        }}))
        .unwrap()
        .unwrap();
        assert_eq!(consent.words, "Text me about my tour. Reply STOP to stop.");
        assert_eq!(consent.agreed_at, now() - Duration::minutes(2));
        assert_eq!(consent.check(now()), Ok(()));
        assert_eq!(read(serde_json::json!({})), Ok(None));
        assert_eq!(read(serde_json::json!({"sms_consent": null})), Ok(None));
    }

    #[test]
    fn each_malformed_consent_is_refused_naming_its_field() {
        let field = |json: serde_json::Value| read(json).unwrap_err().field;
        assert_eq!(field(serde_json::json!({"sms_consent": true})), "sms_consent");
        assert_eq!(
            field(serde_json::json!({"sms_consent": {"agreed_at": "2026-12-01T08:58:00Z"}})),
            "sms_consent.words"
        );
        assert_eq!(
            field(serde_json::json!({"sms_consent": {"words": " ", "agreed_at": "2026-12-01T08:58:00Z"}})),
            "sms_consent.words"
        );
        let long = "x".repeat(limits::CONSENT_WORDS_CHARS + 1);
        assert_eq!(
            field(serde_json::json!({"sms_consent": {"words": long, "agreed_at": "2026-12-01T08:58:00Z"}})),
            "sms_consent.words"
        );
        assert_eq!(
            field(serde_json::json!({"sms_consent": {"words": "ok", "agreed_at": "yesterday"}})),
            "sms_consent.agreed_at"
        );
        assert_eq!(
            field(serde_json::json!({"sms_consent": {"words": "ok", "agreed_at": 1764600000}})),
            "sms_consent.agreed_at"
        );
        let at = |minutes: i64| SmsConsent {
            words: "ok".into(),
            agreed_at: now() + Duration::minutes(minutes),
        };
        assert_eq!(at(5).check(now()), Ok(()), "within the clocks' skew");
        assert_eq!(at(6).check(now()).unwrap_err().field, "sms_consent.agreed_at");
        assert_eq!(
            at(-30 * 24 * 60 - 1).check(now()).unwrap_err().field,
            "sms_consent.agreed_at"
        );
    }

    #[test]
    fn the_latest_event_decides_a_revocation_wins_a_tie_and_an_opt_out_is_for_good() {
        let granted = || ConsentChange::Granted { words: "ok".into() };
        let stop = || ConsentChange::Revoked { by: "STOP".into() };
        assert_eq!(ConsentState::of(&[], false), ConsentState::None);
        assert!(!ConsentState::None.may_text());
        let state = ConsentState::of(&[event(0, granted())], false);
        assert_eq!(state, ConsentState::Granted { since: now() });
        assert!(state.may_text());
        // Out of order as read: the latest by time decides.
        let state = ConsentState::of(&[event(10, stop()), event(0, granted())], false);
        assert_eq!(
            state,
            ConsentState::Revoked {
                since: now() + Duration::minutes(10)
            }
        );
        assert!(!state.may_text());
        let state = ConsentState::of(&[event(0, stop()), event(10, granted())], false);
        assert!(
            state.may_text(),
            "START, or agreeing again in the conversation, restores it"
        );
        let tie = ConsentState::of(&[event(0, granted()), event(0, stop())], false);
        assert!(!tie.may_text());
        let erased = ConsentState::of(&[event(10, granted())], true);
        assert_eq!(erased, ConsentState::OptedOut);
        assert!(!erased.may_text());
    }

    #[test]
    fn a_numbers_digest_is_stable_and_holds_no_digits_of_it() {
        let phone = Phone::parse("(512) 555-0100").unwrap();
        let digest = phone_digest(&phone);
        assert_eq!(digest, phone_digest(&Phone::parse("+1 512 555 0100").unwrap()));
        assert_ne!(digest, phone_digest(&Phone::parse("+15125550101").unwrap()));
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains("5125550100"));
    }
}
