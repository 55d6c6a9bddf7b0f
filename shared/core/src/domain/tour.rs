//! Tour types as the chatbot names them, and as ResMan words them.

use super::InvalidField;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum TourType {
    InPerson,
    Virtual,
    SelfGuided,
}

impl TourType {
    pub const ALL: [TourType; 3] = [TourType::InPerson, TourType::Virtual, TourType::SelfGuided];

    /// Accepts the chatbot's words (`in_person`, `virtual`, `self_guided`), hyphens or spaces too, any case.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        match raw.trim().to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "in_person" | "inperson" | "in_person_tour" => Ok(Self::InPerson),
            "virtual" | "virtual_tour" => Ok(Self::Virtual),
            "self_guided" | "selfguided" | "self_guided_tour" => Ok(Self::SelfGuided),
            _ => Err(InvalidField::new(
                "tour_type",
                "must be one of in_person, virtual, self_guided",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InPerson => "in_person",
            Self::Virtual => "virtual",
            Self::SelfGuided => "self_guided",
        }
    }

    /// ResMan's words for it, as the seed maps them.
    pub fn resman_name(&self) -> &'static str {
        match self {
            Self::InPerson => "In-Person Tour",
            Self::Virtual => "Virtual Tour",
            Self::SelfGuided => "Self-Guided Tour",
        }
    }

    /// Whether a leasing agent gives it (a self-guided tour is limited by capacity instead).
    pub fn needs_agent(&self) -> bool {
        !matches!(self, Self::SelfGuided)
    }
}

impl TryFrom<String> for TourType {
    type Error = InvalidField;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TourType> for &'static str {
    fn from(t: TourType) -> &'static str {
        t.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatbot_words_parse_and_print_back() {
        for t in TourType::ALL {
            assert_eq!(TourType::parse(t.as_str()).unwrap(), t);
        }
        assert_eq!(TourType::parse(" Self-Guided ").unwrap(), TourType::SelfGuided);
        assert_eq!(TourType::parse("helicopter").unwrap_err().field, "tour_type");
        assert_eq!(TourType::InPerson.resman_name(), "In-Person Tour");
    }
}
