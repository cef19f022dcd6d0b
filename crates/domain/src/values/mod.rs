//! Validated values. Each `parse` returns [`DomainError::Invalid`] naming the field and the problem.

mod free_text;
mod username;
pub use free_text::*;
pub use username::*;

use crate::DomainError;
use crate::error::ConflictReason;

/// An email address, kept as given; compared case-insensitively. At most 254 characters
/// (RFC 5321 §4.5.3.1.3), exactly one `@`, a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email address. Errors: `Invalid{"email"}`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("email", "Enter a valid email address.");
        if raw.chars().count() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = raw.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@');
        if local.is_empty() || !domain_ok {
            return Err(bad());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8..=128 bytes (door 004's bounds, the widest of the doors) without NUL. Every
/// byte counts: passwords longer than bcrypt reads are pre-hashed by the services, never
/// truncated.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Shortest allowed password, in bytes.
    pub const MIN_BYTES: usize = 8;
    /// Longest allowed password, in bytes.
    pub const MAX_BYTES: usize = 128;

    /// Parses a new password. Errors: `Invalid{"password"}`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.contains('\0') {
            return Err(DomainError::invalid(
                "password",
                "May not contain NUL characters.",
            ));
        }
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&raw.len()) {
            return Err(DomainError::invalid(
                "password",
                format!(
                    "Must be {}-{} bytes long.",
                    Self::MIN_BYTES,
                    Self::MAX_BYTES
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret itself; only for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The text of a message: not blank, at most `max_chars` characters (4096 by default, configurable;
/// docs/native-api.md "Limits"). Kept exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Parses a message text. Errors: `Invalid{"text"}` when blank, over `max_chars` characters,
    /// or holding a NUL (which PostgreSQL text cannot store).
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        if raw.contains('\0') {
            return Err(DomainError::invalid(
                "text",
                "Message text may not contain NUL characters.",
            ));
        }
        if raw.trim().is_empty() {
            return Err(DomainError::invalid(
                "text",
                "Message text may not be blank.",
            ));
        }
        if raw.chars().count() > max_chars {
            return Err(DomainError::invalid(
                "text",
                format!("Message text may be at most {max_chars} characters long."),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A system line written by the server itself (joins, leaves).
    pub fn system(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sender's idempotency key for a message: 1..=64 characters, unique per author forever
/// (docs/native-api.md: "same `client_id` again → the original message").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    /// Longest allowed key, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses a client id. Errors: `Invalid{"client_id"}` when empty or over 64 characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let chars = raw.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || raw.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "client_id",
                format!(
                    "Must be 1-{} characters long, without control characters.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The unique name of a group, used in door 002's URLs (`/ws/group/<name>/`): 1..=64 characters
/// of letters, digits, `_`, `.`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    /// Longest allowed group name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses a group name. Errors: `Invalid{"name"}`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let chars = raw.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || !raw.chars().all(is_name_char) {
            return Err(DomainError::invalid(
                "name",
                format!(
                    "Must be 1-{} characters of letters, digits, '_', '.' and '-'.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A chat's display title: not blank, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Longest allowed title, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Parses a title. Errors: `Invalid{"title"}`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.trim().is_empty() || raw.chars().count() > Self::MAX_CHARS || raw.contains('\0') {
            return Err(DomainError::invalid(
                "title",
                format!(
                    "Must be 1-{} characters, not blank, without NUL.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_bounds_and_charset() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("bad name").is_err());
        assert!(Username::parse("bad/name").is_err());
        assert!(Username::parse("Ёлка_1.x-y").is_ok());
        assert!(Username::parse("ﬁle").is_err(), "a compatibility ligature");
        assert!(Username::parse("ǅemal").is_err(), "a titlecase digraph");
    }

    #[test]
    fn one_canonical_form_for_every_spelling() {
        let key = |raw: &str| Username::parse(raw).unwrap().key().to_owned();
        // Word-final sigma: Rust's to_lowercase gives ς, PostgreSQL's lower() σ; folding both σ.
        assert_eq!(key("ΛΟΓΟΣ_x"), "λογοσ_x");
        assert_eq!(key("λογος_x"), "λογοσ_x");
        assert_eq!(key("ΟΔΟΣ_x"), Username::key_of("οδος_x"));
        assert_eq!(key("Ｂｏｂ"), "bob", "width mapping");
        assert_eq!(key("STRASSE"), key("straße"), "full case folding");
        assert_eq!(Username::parse("Ｂｏｂ").unwrap().as_str(), "Bob");
        assert_eq!(Username::key_of("ΝΙΚΟΣ"), Username::key_of("Νικος"));
    }

    #[test]
    fn reserved_names_and_their_lookalikes_are_refused() {
        for name in [
            "system",
            "System",
            "ERROR",
            "ｓｙｓｔｅｍ",
            "ѕуѕтем",
            "Systеm",
            "systern",
            "еrror",
        ] {
            assert_eq!(
                Username::parse(name),
                Err(DomainError::Conflict(ConflictReason::NameReserved)),
                "{name}"
            );
        }
        assert!(Username::parse("systems").is_ok());
    }

    #[test]
    fn lookalikes_share_a_skeleton() {
        let skeletons = |raw: &str| Username::parse(raw).unwrap().skeletons().clone();
        let same = |a: &str, b: &str| {
            let (a, b) = (skeletons(a), skeletons(b));
            a[0] == b[0] || a[1] == b[1]
        };
        assert!(same("paypal", "pаypal"));
        assert!(same("paypal", "paypa1"));
        assert!(same("bill", "bi11"));
        assert!(!same("alice", "alicia"));
    }

    #[test]
    fn email_shapes() {
        assert!(Email::parse("a@b.cc").is_ok());
        for bad in [
            "", "a", "a@b", "@b.cc", "a@.cc", "a@b.", "a b@c.dd", "a@b@c.dd",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn password_is_bytes_bounded_for_bcrypt() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("pass\0word").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn message_text_counts_characters_not_bytes() {
        assert!(MessageText::parse("  \n", 10).is_err());
        assert!(MessageText::parse("ёёёёё", 5).is_ok());
        assert!(MessageText::parse("ёёёёёё", 5).is_err());
        assert!(MessageText::parse("a\0b", 5).is_err());
    }

    #[test]
    fn merge_collects_every_field() {
        let merged = DomainError::merge([
            DomainError::invalid("a", "x"),
            DomainError::invalid("b", "y"),
            DomainError::invalid("a", "z"),
        ])
        .unwrap();
        let DomainError::Invalid(fields) = merged else {
            panic!("not invalid")
        };
        assert_eq!(fields["a"], vec!["x", "z"]);
        assert_eq!(fields["b"], vec!["y"]);
        assert!(DomainError::merge([]).is_none());
    }
}
