//! Fields of a request body: the JSON object itself, its text fields, and the `Idempotency-Key` header, each
//! refused naming the field and why.

use super::{InvalidField, limits};
use sha2::{Digest, Sha256};

pub(crate) type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A request body as a JSON object, at most `max` bytes: anything else is refused naming `body`.
pub(crate) fn json_object(body: &[u8], max: usize) -> Result<JsonObject, InvalidField> {
    if body.len() > max {
        return Err(InvalidField::new("body", format!("must be at most {max} bytes")));
    }
    match serde_json::from_slice(body).map_err(|_| InvalidField::new("body", "is not valid JSON"))? {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(InvalidField::new("body", "must be a JSON object")),
    }
}

/// The stored key an `Idempotency-Key` header stands for (one namespace for every endpoint: one key, one request):
/// 1 to 255 printable characters, kept as their digest.
pub fn idempotency_key_of(header: &str) -> Result<String, InvalidField> {
    let key = header.trim();
    if key.is_empty() || key.chars().count() > limits::IDEMPOTENCY_KEY_CHARS || key.chars().any(|c| c.is_control()) {
        return Err(InvalidField::new(
            "Idempotency-Key",
            format!("must be 1 to {} printable characters", limits::IDEMPOTENCY_KEY_CHARS),
        ));
    }
    Ok(format!("key:{}", hex::encode(Sha256::digest(key.as_bytes()))))
}

pub(crate) fn text_field(object: &JsonObject, name: &str, field: &'static str) -> Result<Option<String>, InvalidField> {
    match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(InvalidField::new(field, "must be a string")),
    }
}

/// A field that must be there and not blank.
pub(crate) fn required<'a>(value: &'a Option<String>, field: &'static str) -> Result<&'a str, InvalidField> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| InvalidField::new(field, "is required"))
}

/// Free text as sent, at most `max` characters counted as JSON Schema counts them (before trimming, so the
/// description's `maxLength` is exactly the limit), with no control character but newline; trimmed.
pub(crate) fn checked_text<'a>(raw: &'a str, field: &'static str, max: usize) -> Result<&'a str, InvalidField> {
    if raw.chars().count() > max {
        return Err(InvalidField::new(field, format!("must be at most {max} characters")));
    }
    let text = raw.trim();
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InvalidField::new(field, "must not hold control characters"));
    }
    Ok(text)
}
