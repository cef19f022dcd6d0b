//! Free-text names of door 001 (the Avito task, seed 001), whose task sets no character rule:
//! RFC 8266's `Nickname` profile of PRECIS — the IETF's rule for names people type in a chat.
//!
//! The profile (by `precis-profiles`) trims leading and trailing spaces, maps every Unicode space
//! to U+0020 and collapses runs of them to one, applies NFKC, and refuses control characters,
//! unassigned code points and text that is empty after trimming. Letters of any script, digits,
//! punctuation, symbols and emoji are all allowed: `klassnij chatik`, `Chat #1!` and `🍕 lovers`
//! are names.

use super::*;
use precis_core::profile::Profile;

/// Enforces RFC 8266's `Nickname` profile on `raw` and bounds the result to `max_chars`
/// characters. Errors: `Invalid{field}` naming the limit.
fn nickname(field: &str, raw: &str, max_chars: usize) -> Result<String, DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            format!(
                "Must be 1-{max_chars} characters of text (letters, digits, spaces, punctuation, \
                 symbols), not blank, without control characters."
            ),
        )
    };
    let name = precis_profiles::Nickname::new()
        .enforce(raw)
        .map_err(|_| bad())?
        .into_owned();
    if name.chars().count() > max_chars {
        return Err(bad());
    }
    Ok(name)
}

/// The name of a door 001 chat: free text, 1..=128 characters after RFC 8266's `Nickname`
/// enforcement (trimmed, inner spaces collapsed, NFKC), no control characters.
///
/// Stored as the chat's title; unique among door 001's chats in this enforced form (exact
/// comparison: `Team` and `team` are two chats, `Team ` and `Team` one), as the task says names
/// are unique. The rule is in docs/doors.md, "Door 001".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatName(String);

impl ChatName {
    /// Longest allowed name, in characters (a chat title's limit, [`Title::MAX_CHARS`]).
    pub const MAX_CHARS: usize = Title::MAX_CHARS;

    /// Parses a door 001 chat name. Errors: `Invalid{"name"}`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        nickname("name", raw, Self::MAX_CHARS).map(Self)
    }

    /// The name as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The chat title this name is stored as (always a valid one).
    pub fn title(&self) -> Title {
        Title(self.0.clone())
    }
}

impl Username {
    /// Longest door 001 username, in characters.
    pub const NICKNAME_MAX_CHARS: usize = 64;

    /// Parses a door 001 username: free text, 1..=64 characters after RFC 8266's `Nickname`
    /// enforcement (`Anna Petrova`, `user 1`, `🍕`), kept for display in that form.
    ///
    /// Compared like every username, case-insensitively: its key is the name case-folded
    /// (Unicode Default Case Folding) and in NFKC again, so `Anna Petrova` and `ANNA PETROVA`
    /// are one name; its TR39 skeletons keep lookalikes apart as on the other doors, and the
    /// reserved names stay reserved. Errors: `Invalid{"username"}`; `Conflict(NameReserved)`.
    pub fn parse_nickname(raw: &str) -> Result<Self, DomainError> {
        let display = nickname("username", raw, Self::NICKNAME_MAX_CHARS)?;
        let folded = icu_casemap::CaseMapper::new()
            .fold_string(&display)
            .into_owned();
        // Folding can leave text out of NFKC; the profile normalizes it again.
        let key = precis_profiles::Nickname::new()
            .enforce(folded.as_str())
            .map_or(folded.clone(), std::borrow::Cow::into_owned);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_names_are_free_text_trimmed_and_bounded() {
        for (raw, stored) in [
            ("klassnij chatik", "klassnij chatik"),
            ("Chat #1!", "Chat #1!"),
            ("🍕 lovers", "🍕 lovers"),
            ("  Team\u{3000}\u{3000}Rust  ", "Team Rust"),
            ("Ｔｅａｍ", "Team"),
            ("Классный чатик", "Классный чатик"),
        ] {
            assert_eq!(
                ChatName::parse(raw).map(|n| n.0),
                Ok(stored.into()),
                "{raw:?}"
            );
        }
        let longest = "я".repeat(ChatName::MAX_CHARS);
        assert!(ChatName::parse(&longest).is_ok());
        for bad in [
            "",
            "   ",
            "a\u{0}b",
            "line\nbreak",
            "tab\there",
            &format!("{longest}я"),
        ] {
            let error = ChatName::parse(bad).expect_err(bad);
            assert!(
                matches!(&error, DomainError::Invalid(fields) if fields.contains_key("name")),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn door001_usernames_are_free_text_compared_without_case() {
        let anna = Username::parse_nickname("  Anna   Petrova ").expect("a name with spaces");
        assert_eq!(anna.as_str(), "Anna Petrova");
        let shout = Username::parse_nickname("ANNA PETROVA").expect("the same, upper case");
        assert_eq!(anna.key(), shout.key());
        assert_eq!(
            Username::parse_nickname("ΛΟΓΟΣ").map(|n| n.key().to_owned()),
            Username::parse_nickname("λογος").map(|n| n.key().to_owned())
        );
        assert!(Username::parse_nickname("🍕").is_ok());
        assert!(Username::parse_nickname(&"x".repeat(64)).is_ok());
        for bad in ["", "  ", "a\u{7}b", &"x".repeat(65)] {
            assert!(Username::parse_nickname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Username::parse_nickname("SYSTEM"),
            Err(DomainError::Conflict(ConflictReason::NameReserved))
        );
    }
}
