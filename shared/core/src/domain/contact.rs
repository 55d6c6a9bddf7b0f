//! A prospect's contact details. They are personal data: `Debug` prints them redacted, they have no `Display`, and
//! the few places that must send the real value (the mailer, the ResMan adapter) call `expose()` on purpose.

use super::InvalidField;
use serde::{Deserialize, Serialize};

/// An e-mail address: trimmed, one `@`, a non-empty local part, a dotted domain (kept lower-case), no spaces.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "prospect_email";
        let raw = raw.trim();
        if raw.chars().count() > super::limits::EMAIL_CHARS {
            return Err(InvalidField::new(
                field,
                format!("must be at most {} characters", super::limits::EMAIL_CHARS),
            ));
        }
        let Some((local, domain)) = raw.split_once('@') else {
            return Err(InvalidField::new(field, "must contain '@'"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 {
            return Err(InvalidField::new(field, "needs a name before '@'"));
        }
        if local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@') || !domain_ok {
            return Err(InvalidField::new(field, "is not a valid e-mail address"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The real address, for the few adapters that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first = local.chars().next().unwrap_or('*');
        write!(f, "Email({first}***@{domain})")
    }
}

checked_string!(Email);

/// A phone number in E.164 (`+15125550100`). Numbers written without a country code are read as North American
/// (every property we serve is in the US); `+` numbers of any country are kept.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "prospect_phone";
        let raw = raw.trim();
        let international = raw.starts_with('+') || raw.starts_with("00");
        let mut digits = String::with_capacity(raw.len());
        for c in raw.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '+' => {}
                _ => {
                    return Err(InvalidField::new(
                        field,
                        "may hold only digits, spaces, '+', '-', '.', '(' and ')'",
                    ));
                }
            }
        }
        let e164 = if international {
            let national = digits.strip_prefix("00").unwrap_or(&digits);
            national.to_owned()
        } else {
            match digits.len() {
                10 => format!("1{digits}"),
                11 if digits.starts_with('1') => digits,
                _ => {
                    return Err(InvalidField::new(
                        field,
                        "must be a 10-digit US number or start with '+' and a country code",
                    ));
                }
            }
        };
        if !(8..=15).contains(&e164.len()) || e164.starts_with('0') {
            return Err(InvalidField::new(field, "is not a valid phone number"));
        }
        if e164.starts_with('1') && (e164.len() != 11 || matches!(e164.as_bytes()[1], b'0' | b'1')) {
            return Err(InvalidField::new(field, "is not a valid North American number"));
        }
        Ok(Self(format!("+{e164}")))
    }

    /// The number in E.164, for the few adapters that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "Phone(+***{tail})")
    }
}

checked_string!(Phone);

/// A person's name as ResMan stores it: first and last. A single word is kept as the first name with an empty last
/// name refused, because ResMan requires both; the chatbot's one-line name is split at its last space.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    first: String,
    last: String,
}

impl PersonName {
    pub fn parse(full: &str) -> Result<Self, InvalidField> {
        let field = "prospect_name";
        let full = full.split_whitespace().collect::<Vec<_>>().join(" ");
        if full.chars().count() > 100 {
            return Err(InvalidField::new(field, "must be at most 100 characters"));
        }
        if full.chars().any(|c| c.is_control() || matches!(c, '<' | '>')) {
            return Err(InvalidField::new(field, "holds characters a name cannot have"));
        }
        match full.rsplit_once(' ') {
            Some((first, last)) => Ok(Self {
                first: first.to_owned(),
                last: last.to_owned(),
            }),
            None if full.is_empty() => Err(InvalidField::new(field, "must not be empty")),
            None => Err(InvalidField::new(field, "needs a first and a last name")),
        }
    }

    pub fn from_parts(first: &str, last: &str) -> Result<Self, InvalidField> {
        Self::parse(&format!("{} {}", first.trim(), last.trim()))
    }

    pub fn first(&self) -> &str {
        &self.first
    }

    pub fn last(&self) -> &str {
        &self.last
    }
}

impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let initial = |s: &str| s.chars().next().unwrap_or('*');
        write!(f, "PersonName({}. {}.)", initial(&self.first), initial(&self.last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keeps_the_local_part_and_lowercases_the_domain() {
        let email = Email::parse("  Ana.Lopez+tours@Example.COM ").unwrap();
        assert_eq!(email.expose(), "Ana.Lopez+tours@example.com");
    }

    #[test]
    fn malformed_emails_are_refused_naming_the_field() {
        for bad in [
            "",
            "ana",
            "@example.com",
            "ana@",
            "ana@example",
            "ana lopez@example.com",
            "a@b@c.com",
            "ana@.com",
            "ana@example..com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "prospect_email", "{bad}");
        }
    }

    #[test]
    fn email_debug_is_redacted() {
        let email = Email::parse("ana.lopez@example.com").unwrap();
        let shown = format!("{email:?}");
        assert_eq!(shown, "Email(a***@example.com)");
        assert!(!shown.contains("lopez"));
    }

    #[test]
    fn us_numbers_are_normalised_to_e164() {
        for raw in [
            "(512) 555-0100",
            "512.555.0100",
            "5125550100",
            "1 512 555 0100",
            "+1 512-555-0100",
        ] {
            assert_eq!(Phone::parse(raw).unwrap().expose(), "+15125550100", "{raw}");
        }
    }

    #[test]
    fn international_numbers_keep_their_country_code() {
        assert_eq!(Phone::parse("+44 20 7946 0958").unwrap().expose(), "+442079460958");
        assert_eq!(Phone::parse("0044 20 7946 0958").unwrap().expose(), "+442079460958");
    }

    #[test]
    fn malformed_phones_are_refused() {
        for bad in [
            "",
            "555-0100",
            "call me",
            "+1 512 555 01000",
            "(012) 555-0100",
            "+1234567",
        ] {
            assert_eq!(Phone::parse(bad).unwrap_err().field, "prospect_phone", "{bad}");
        }
    }

    #[test]
    fn phone_debug_shows_only_the_last_two_digits() {
        let shown = format!("{:?}", Phone::parse("5125550100").unwrap());
        assert_eq!(shown, "Phone(+***00)");
    }

    #[test]
    fn names_split_at_the_last_space() {
        let name = PersonName::parse("  Mary  Ann   Lopez ").unwrap();
        assert_eq!((name.first(), name.last()), ("Mary Ann", "Lopez"));
        assert_eq!(PersonName::parse("Cher").unwrap_err().field, "prospect_name");
        assert!(PersonName::parse("   ").is_err());
        assert_eq!(format!("{name:?}"), "PersonName(M. L.)");
    }
}
