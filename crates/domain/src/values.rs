//! Validated values. Each `parse` returns [`DomainError::Invalid`] naming the field and the problem.

use crate::DomainError;
use crate::error::ConflictReason;

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A username: 3..=32 characters of letters, digits, `_`, `.`, `-` (docs/native-api.md, "Limits";
/// on every door), kept for display as given (after RFC 8265's width mapping and NFC), and compared
/// by its canonical form ([`Username::key`]), computed here and only here:
///
/// 1. the UsernameCaseMapped profile of PRECIS (RFC 8265 §3.3: width mapping, case mapping,
///    NFC, the directionality rule, IdentifierClass code points), by the `precis-profiles`
///    crate;
/// 2. then Unicode Default Case Folding (ICU4X `icu_casemap`) and NFC again: RFC 8265 §3.3.1
///    specifies case *folding* where `precis-profiles` 0.2 lowercases, and only folding makes a
///    word-final `ς` and `σ` (from `Σ`) the same letter, so `ΛΟΓΟΣ` and `λογος` are one name.
///
/// Every lookup by name on every door uses the key (never PostgreSQL's `lower()`, whose mapping
/// differs), and the database keeps it unique. Names whose confusable skeleton (Unicode TR39,
/// `unicode-security`) equals a reserved name's are refused; the database refuses those equal to
/// an existing name's ([`Username::skeletons`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
    skeletons: [String; 2],
}

impl Username {
    /// Shortest allowed username, in characters.
    pub const MIN_CHARS: usize = 3;
    /// Longest allowed username, in characters.
    pub const MAX_CHARS: usize = 32;
    /// Names the doors use for their own lines (door 004's `system` and `error` frames, the
    /// `system` author of join lines), so no user may take them or a lookalike of them.
    pub const RESERVED: [&'static str; 2] = ["system", "error"];

    /// Parses a username. Errors: `Invalid{"username"}` when too short/long or with other
    /// characters (RFC 8265's IdentifierClass, and our letters/digits/`_ . -`); `Conflict("This
    /// name is reserved.")` for `system`, `error` and their lookalikes (other widths, cases,
    /// TR39 confusables).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        use precis_core::profile::Profile;
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(DomainError::invalid(
                "username",
                format!(
                    "Must be {}-{} characters long.",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        let bad_chars = || {
            DomainError::invalid(
                "username",
                "May contain only letters, digits, '_', '.' and '-'.",
            )
        };
        if !raw.chars().all(is_name_char) {
            return Err(bad_chars());
        }
        let display = precis_profiles::UsernameCasePreserved::new()
            .enforce(raw)
            .map_err(|_| bad_chars())?
            .into_owned();
        let key = Self::key_of(&display);
        let skeletons = Self::skeletons_of(&key);
        if Self::is_reserved(&skeletons) {
            return Err(DomainError::Conflict(ConflictReason::NameReserved));
        }
        Ok(Self {
            display,
            key,
            skeletons,
        })
    }

    /// The username for display: as given, width-mapped and in NFC.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The canonical form every comparison and lookup uses (unique in the database).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The TR39 confusable skeletons of the key and of its uppercase form: two names whose
    /// skeletons match in either position look alike (`paypal`/`pаypal` in the first,
    /// `system`/`ѕуѕтем` only in the second), and the database keeps each unique.
    pub fn skeletons(&self) -> &[String; 2] {
        &self.skeletons
    }

    /// The canonical form of any text given as a name (a login, a URL segment, a search
    /// prefix), so that it finds the user whose [`Username::key`] it equals. Text the profile
    /// refuses (a name stored before these rules) is case-folded and normalized all the same.
    pub fn key_of(raw: &str) -> String {
        use precis_core::profile::Profile;
        let profile = precis_profiles::UsernameCaseMapped::new();
        let mapped = profile
            .enforce(raw)
            .map_or_else(|_| raw.to_owned(), std::borrow::Cow::into_owned);
        let folded = icu_casemap::CaseMapper::new()
            .fold_string(&mapped)
            .into_owned();
        // Folding can leave a string that is not in NFC; the profile normalizes it again.
        profile
            .enforce(folded.as_str())
            .map_or(folded.clone(), std::borrow::Cow::into_owned)
    }

    /// The two confusable skeletons of a key (see [`Username::skeletons`]).
    pub fn skeletons_of(key: &str) -> [String; 2] {
        use unicode_security::confusable_detection::skeleton;
        [
            skeleton(key).collect(),
            skeleton(&key.to_uppercase()).collect(),
        ]
    }

    /// Whether skeletons of a name match those of a reserved name.
    pub fn is_reserved(skeletons: &[String; 2]) -> bool {
        Self::RESERVED.iter().any(|reserved| {
            let theirs = Self::skeletons_of(reserved);
            theirs[0] == skeletons[0] || theirs[1] == skeletons[1]
        })
    }
}

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
