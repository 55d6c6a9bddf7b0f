//! Identifiers. Each is its own type so that an employee id can never be passed where a prospect id belongs.

use super::InvalidField;
use serde::{Deserialize, Serialize};

/// Declares an opaque, non-empty, trimmed identifier of at most 128 characters of `[A-Za-z0-9._:-]`.
macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidField> {
                parse_opaque(raw, $field).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        checked_string!($name);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn parse_opaque(raw: &str, field: &'static str) -> Result<String, InvalidField> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if id.chars().count() > super::limits::ID_CHARS {
        return Err(InvalidField::new(
            field,
            format!("must be at most {} characters", super::limits::ID_CHARS),
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(InvalidField::new(
            field,
            "may hold only letters, digits, '-', '_', '.' and ':'",
        ));
    }
    Ok(id.to_owned())
}

opaque_id!(
    /// A property as ResMan names it (`PropertyID`, a GUID in ResMan).
    ResManPropertyId,
    "property_id"
);
opaque_id!(
    /// A ResMan employee (`Employees[].ID`), the value that goes in `AgentID`.
    AgentId,
    "agent_id"
);
opaque_id!(
    /// A ResMan prospect (`Identification IDType="ProspectID"`).
    ProspectId,
    "prospect_id"
);
opaque_id!(
    /// A ResMan person on a prospect (`Identification IDType="PersonID"`).
    PersonId,
    "person_id"
);
opaque_id!(
    /// A ResMan lead source (`ProspectSources[].ID`), required on a new guest card.
    ProspectSourceId,
    "prospect_source_id"
);
opaque_id!(
    /// The `EventID` ResMan gives a tour event: the ResMan appointment id.
    AppointmentId,
    "appointment_id"
);
opaque_id!(
    /// The token of a slot hold (`POST /api/resman/tours/holds`), which a booking presents to get the held slot.
    HoldToken,
    "hold_token"
);

/// The chatbot's conversation: opaque, up to 128 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let id = raw.trim();
        if id.is_empty() {
            return Err(InvalidField::new("conversation_id", "must not be empty"));
        }
        if id.chars().count() > super::limits::ID_CHARS || id.chars().any(|c| c.is_control() || c == '#') {
            return Err(InvalidField::new(
                "conversation_id",
                format!(
                    "must be at most {} printable characters without '#'",
                    super::limits::ID_CHARS
                ),
            ));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Our id for a booking (also the reference written into ResMan's comments).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BookingId(String);

impl BookingId {
    /// A new id from 16 random bytes (the caller supplies the randomness, as it supplies the time).
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("tour_{}", uuid.simple()))
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let ok = raw
            .strip_prefix("tour_")
            .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidField::new("appointment_id", "is not a booking id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The marker our ResMan posts carry, so a retry after a lost answer can find what was already written.
    pub fn resman_reference(&self) -> String {
        format!("[tour-ref:{}]", self.0)
    }
}

impl std::fmt::Display for BookingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_keep_their_value() {
        let id = AgentId::parse("  a1e0c3b2-0001  ").unwrap();
        assert_eq!(id.as_str(), "a1e0c3b2-0001");
    }

    #[test]
    fn empty_or_odd_ids_are_refused_naming_the_field() {
        assert_eq!(ProspectId::parse(" ").unwrap_err().field, "prospect_id");
        assert!(AgentId::parse("a b").is_err());
        assert!(AgentId::parse("<x>").is_err());
        assert!(AgentId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn ids_deserialise_through_the_same_parser() {
        let ok: AppointmentId = serde_json::from_str("\"E-1\"").unwrap();
        assert_eq!(ok.as_str(), "E-1");
        assert!(serde_json::from_str::<AppointmentId>("\"\"").is_err());
    }
}
