//! Usernames: RFC 8265 (PRECIS `UsernameCaseMapped`) plus Unicode case folding, with confusable skeletons (UTS 39).

use super::*;

pub(super) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A username: 3..=32 characters of letters, digits, `_`, `.`, `-`, on every door but door 001
/// (whose free-text names are [`Username::parse_nickname`]'s).
///
/// The rule is in docs/native-api.md, "Limits". The name is kept for display as given (after RFC
/// 8265's width mapping and NFC), and compared by its canonical form ([`Username::key`]), computed
/// here and only here:
///
/// 1. the `UsernameCaseMapped` profile of PRECIS (RFC 8265 §3.3: width mapping, case mapping,
///    NFC, the directionality rule, `IdentifierClass` code points), by the `precis-profiles`
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
    pub(super) display: String,
    pub(super) key: String,
    pub(super) skeletons: [String; 2],
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
    /// characters (RFC 8265's `IdentifierClass`, and our letters/digits/`_ . -`); `Conflict(NameReserved)`
    /// for `system`, `error` and their lookalikes (other widths, cases,
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
