//! The limits the API enforces at its edge, in one place: the code checks against these constants, and a test holds
//! `openapi.yaml` to them (each limit names where the description states it), so what a client reads is what the
//! functions refuse. Lengths are in characters (Unicode scalar values), as JSON Schema's `maxLength` counts them.

/// The largest booking body.
pub const BOOK_BODY_BYTES: usize = 16 * 1024;
/// The largest update body.
pub const UPDATE_BODY_BYTES: usize = 8 * 1024;
/// The largest slot-hold body.
pub const HOLD_BODY_BYTES: usize = 2048;
/// The largest self-service form.
pub const FORM_BYTES: usize = 4096;
/// `conversation_id`, `property_id`, an appointment id, a notice's `event_id` and `staff_member`.
pub const ID_CHARS: usize = 128;
/// An e-mail address.
pub const EMAIL_CHARS: usize = 254;
/// `special_requests`.
pub const SPECIAL_REQUESTS_CHARS: usize = 1000;
/// `unit_preferences` as a list: this many entries of at most [`UNIT_PREFERENCE_CHARS`] each.
pub const UNIT_PREFERENCES: usize = 10;
pub const UNIT_PREFERENCE_CHARS: usize = 100;
/// `unit_preferences` as one string.
pub const UNIT_PREFERENCES_TEXT_CHARS: usize = 500;
/// `staff_notes`.
pub const STAFF_NOTES_CHARS: usize = 2000;
/// An `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_CHARS: usize = 255;
/// A self-service link's token (`t`).
pub const LINK_TOKEN_CHARS: usize = 200;
/// `sms_consent.words`: the words the prospect was shown when they agreed to texts.
pub const CONSENT_WORDS_CHARS: usize = 1000;

/// Where `openapi.yaml` states each limit (a path of keys from the document's root) and its value.
pub const DESCRIBED: &[(&[&str], usize)] = &[
    (
        &[
            "paths",
            "/api/resman/tours/book",
            "post",
            "requestBody",
            "x-max-body-bytes",
        ],
        BOOK_BODY_BYTES,
    ),
    (
        &[
            "paths",
            "/api/resman/tours/{appointment_id}",
            "put",
            "requestBody",
            "x-max-body-bytes",
        ],
        UPDATE_BODY_BYTES,
    ),
    (
        &["paths", "/tour", "post", "requestBody", "x-max-body-bytes"],
        FORM_BYTES,
    ),
    (
        &[
            "paths",
            "/api/resman/tours/holds",
            "post",
            "requestBody",
            "x-max-body-bytes",
        ],
        HOLD_BODY_BYTES,
    ),
    (
        &[
            "components",
            "schemas",
            "HoldRequest",
            "properties",
            "conversation_id",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "HoldRequest",
            "properties",
            "property_id",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "HoldRequest",
            "properties",
            "staff_member_id",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "BookTourRequest",
            "properties",
            "hold_token",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "BookTourRequest",
            "properties",
            "conversation_id",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "TourData",
            "properties",
            "property_id",
            "maxLength",
        ],
        ID_CHARS,
    ),
    (
        &["components", "parameters", "AppointmentId", "schema", "maxLength"],
        ID_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "TourData",
            "properties",
            "prospect_email",
            "maxLength",
        ],
        EMAIL_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "TourData",
            "properties",
            "special_requests",
            "maxLength",
        ],
        SPECIAL_REQUESTS_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "UpdateTourRequest",
            "properties",
            "staff_notes",
            "maxLength",
        ],
        STAFF_NOTES_CHARS,
    ),
    (
        &["components", "parameters", "IdempotencyKey", "schema", "maxLength"],
        IDEMPOTENCY_KEY_CHARS,
    ),
    (
        &["components", "parameters", "LinkToken", "schema", "maxLength"],
        LINK_TOKEN_CHARS,
    ),
    (
        &[
            "components",
            "schemas",
            "SmsConsent",
            "properties",
            "words",
            "maxLength",
        ],
        CONSENT_WORDS_CHARS,
    ),
];

/// The unit preferences' two forms, as `oneOf` lists them: (list length, entry length, one string's length).
pub const UNIT_PREFERENCES_AT: &[&str] = &["components", "schemas", "TourData", "properties", "unit_preferences"];

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::{Yaml, YamlLoader};

    fn described() -> Yaml {
        let text = include_str!("../../../../openapi.yaml");
        YamlLoader::load_from_str(text).expect("openapi.yaml is YAML").remove(0)
    }

    fn at<'a>(doc: &'a Yaml, path: &[&str]) -> &'a Yaml {
        path.iter().fold(doc, |node, key| &node[*key])
    }

    fn number(node: &Yaml, path: &[&str]) -> usize {
        node.as_i64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("openapi.yaml states no number at {}", path.join(" > ")))
    }

    #[test]
    fn the_api_description_states_every_limit_the_code_enforces() {
        let doc = described();
        for (path, limit) in DESCRIBED {
            assert_eq!(number(at(&doc, path), path), *limit, "{}", path.join(" > "));
        }
        let forms = at(&doc, UNIT_PREFERENCES_AT)["oneOf"]
            .as_vec()
            .expect("unit_preferences has oneOf");
        let list = forms.iter().find(|f| f["type"].as_str() == Some("array")).unwrap();
        let text = forms.iter().find(|f| f["type"].as_str() == Some("string")).unwrap();
        assert_eq!(number(&list["maxItems"], &["maxItems"]), UNIT_PREFERENCES);
        assert_eq!(
            number(&list["items"]["maxLength"], &["items.maxLength"]),
            UNIT_PREFERENCE_CHARS
        );
        assert_eq!(number(&text["maxLength"], &["maxLength"]), UNIT_PREFERENCES_TEXT_CHARS);
    }
}
