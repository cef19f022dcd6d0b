//! Door 001's request bodies: a JSON object of at most `CHAT_MAX_BODY_BYTES`, its fields taken
//! one by one, so that every problem names the field and says what is wrong in plain words
//! (`users[2]: Must be a user id (a whole number or a string of digits), not "abc".`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};

use super::{AvitoError, AvitoResult};
use crate::doors::{BodyError, read_body};
use crate::state::AppState;

/// A request's JSON object; fields not asked for are ignored.
pub(super) struct Body(Map<String, Value>);

impl Body {
    /// Reads the body of `req`. Errors: 415 when `Content-Type` is not JSON (`application/json`
    /// or `application/<x>+json`: a browser page elsewhere cannot post a simple form here), 413
    /// over `CHAT_MAX_BODY_BYTES`, 400 when broken off, not JSON, or not a JSON object.
    pub(super) async fn read(
        state: &AppState,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> AvitoResult<Self> {
        let content_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let essence = essence.to_ascii_lowercase();
        if essence != "application/json"
            && !(essence.starts_with("application/") && essence.ends_with("+json"))
        {
            let got = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("{content_type:?}")
            };
            let problem = format!("Content-Type must be application/json (got {got})");
            return Err(AvitoError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                problem,
                None,
            ));
        }
        let bytes = read_body(state, payload).await.map_err(|e| match e {
            BodyError::TooLarge(limit) => AvitoError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes (CHAT_MAX_BODY_BYTES)"),
                None,
            ),
            BodyError::Broken(cause) => bad(format!("the body could not be read: {cause}")),
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(other) => Err(bad(format!(
                "the body must be a JSON object, not {}",
                describe(&other)
            ))),
            Err(e) => Err(bad(format!("the body is not valid JSON: {e}"))),
        }
    }

    /// A field given (`null` counts as not given).
    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// An id field: a JSON integer (in any notation: `7`, `7.0`) or a string of digits (`"7"`),
    /// as the task's clients send either; `None` when not given. Errors: 400 naming the field.
    pub(super) fn id(&self, field: &str, what: &str) -> AvitoResult<Option<i64>> {
        self.get(field)
            .map(|value| id_of(value).ok_or_else(|| not_an_id(field, what, value)))
            .transpose()
    }

    /// A string field; `None` when not given. Errors: 400 naming the field.
    pub(super) fn text(&self, field: &str) -> AvitoResult<Option<&str>> {
        self.get(field)
            .map(|value| {
                value.as_str().ok_or_else(|| {
                    bad(format!(
                        "{field}: Must be a string, not {}.",
                        describe(value)
                    ))
                })
            })
            .transpose()
    }

    /// A list of ids (each as [`Body::id`] takes it); `None` when not given. Errors: 400 naming
    /// the field, or the first element in error as `field[index]`.
    pub(super) fn ids(&self, field: &str, what: &str) -> AvitoResult<Option<Vec<i64>>> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(bad(format!(
                "{field}: Must be a list of {what} ids, not {}.",
                describe(value)
            )));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                id_of(item).ok_or_else(|| not_an_id(&format!("{field}[{i}]"), what, item))
            })
            .collect::<AvitoResult<Vec<i64>>>()
            .map(Some)
    }
}

/// A field's value was required: 400 "`<field>`: This field is required.".
pub(super) fn required<T>(field: &str, value: Option<T>) -> AvitoResult<T> {
    value.ok_or_else(|| bad(format!("{field}: This field is required.")))
}

/// A 400 with `problem` as its text.
pub(super) fn bad(problem: String) -> AvitoError {
    AvitoError(StatusCode::BAD_REQUEST, problem, None)
}

fn not_an_id(field: &str, what: &str, value: &Value) -> AvitoError {
    bad(format!(
        "{field}: Must be a {what} id (a whole number or a string of digits), not {}.",
        describe(value)
    ))
}

/// An integral JSON number or a string of ASCII digits (optional sign, spaces around), in
/// `i64`'s range.
fn id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            // 2^63 as f64 is exactly representable; anything at or above it is out of range.
            let f = n.as_f64()?;
            let range = -9.223_372_036_854_776e18..9.223_372_036_854_776e18;
            (f.fract() == 0.0 && range.contains(&f)).then_some(f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

/// What a JSON value is, in words: `a boolean`, `a list`, `"abc"`, `1.5`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("the text {head:?}…")
        }
        Value::String(s) => format!("the text {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_come_as_integers_in_any_notation_or_digit_strings() {
        for (value, id) in [
            (json!(7), Some(7)),
            (json!(7.0), Some(7)),
            (json!("7"), Some(7)),
            (json!(" 42 "), Some(42)),
            (json!("-3"), Some(-3)),
            (json!(1.5), None),
            (json!("7a"), None),
            (json!("0x10"), None),
            (json!(""), None),
            (json!(1e30), None),
            (json!(true), None),
            (json!([1]), None),
        ] {
            assert_eq!(id_of(&value), id, "{value}");
        }
    }

    #[test]
    fn problems_name_the_field_in_plain_words() {
        let body = Body(
            json!({"chat": true, "users": [1, "abc"], "list": "x", "text": 5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        fn problem<T>(result: AvitoResult<T>) -> Option<String> {
            result.err().map(|e| e.1)
        }
        assert_eq!(
            problem(body.id("chat", "chat")).as_deref(),
            Some("chat: Must be a chat id (a whole number or a string of digits), not a boolean.")
        );
        assert_eq!(
            problem(body.ids("users", "user")).as_deref(),
            Some(
                "users[1]: Must be a user id (a whole number or a string of digits), not the \
                 text \"abc\"."
            )
        );
        assert_eq!(
            problem(body.ids("list", "user")).as_deref(),
            Some("list: Must be a list of user ids, not the text \"x\".")
        );
        assert_eq!(
            problem(body.text("text")).as_deref(),
            Some("text: Must be a string, not the number 5.")
        );
        assert_eq!(body.id("missing", "chat").ok(), Some(None));
    }
}
