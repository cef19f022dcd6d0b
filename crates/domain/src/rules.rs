//! Who may read, post, join and delete. Pure functions over roles and chat kinds.

use crate::DomainError;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// The stored and wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored spelling. Errors: `Invalid` naming the enum.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(DomainError::invalid(stringify!($name), format!("unknown value {raw:?}"))),
                }
            }
        }
    };
}

text_enum!(
    /// What a chat is: a direct chat between two users, a group, or a customer's support chat.
    ChatKind { /// Two users, exactly one chat per pair.
    Direct = "direct", /// Many members; public or private.
    Group = "group", /// A customer and the operators (door 003).
    Support = "support" }
);

text_enum!(
    /// A member's role in a chat.
    MemberRole { /// Created the chat (or was handed it); one per group.
    Owner = "owner", /// Invites and removes members.
    Admin = "admin", /// Reads and posts.
    Member = "member" }
);

text_enum!(
    /// A user's role on the server.
    UserRole { /// An ordinary user.
    User = "user", /// Answers support chats (door 003).
    Operator = "operator", /// Administers the server.
    Admin = "admin" }
);

text_enum!(
    /// What a message is: written by a user, or a system line (joins, leaves) with no author.
    MessageKind { /// Written by a user.
    Text = "text", /// Written by the server.
    System = "system" }
);

/// May a user with this membership (None: not a member) read and post in the chat?
/// Errors: `Forbidden("not a member of this chat")`.
pub fn can_post(membership: Option<MemberRole>) -> Result<(), DomainError> {
    membership
        .map(|_| ())
        .ok_or_else(|| DomainError::Forbidden("You are not a member of this chat.".into()))
}

/// May a user join this chat by themselves? Only public groups (seed 002: "join group"; private
/// groups are invite only). Errors: `Forbidden`, or `Conflict` when already a member.
pub fn can_join(
    kind: ChatKind,
    is_private: bool,
    membership: Option<MemberRole>,
) -> Result<(), DomainError> {
    if membership.is_some() {
        return Err(DomainError::Conflict(
            "You are already a member of this chat.".into(),
        ));
    }
    match kind {
        ChatKind::Group if !is_private => Ok(()),
        ChatKind::Group => Err(DomainError::Forbidden(
            "This group is private: join by invitation.".into(),
        )),
        _ => Err(DomainError::Forbidden("Only groups can be joined.".into())),
    }
}

/// May this member delete the whole chat? Only a group's owner (PROTOCOLS.md, door 002 decision).
/// Errors: `Forbidden`.
pub fn can_delete_chat(kind: ChatKind, membership: Option<MemberRole>) -> Result<(), DomainError> {
    match (kind, membership) {
        (ChatKind::Group, Some(MemberRole::Owner)) => Ok(()),
        (ChatKind::Group, _) => Err(DomainError::Forbidden(
            "Only the owner may delete this group.".into(),
        )),
        _ => Err(DomainError::Forbidden("Only groups can be deleted.".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for kind in [ChatKind::Direct, ChatKind::Group, ChatKind::Support] {
            assert_eq!(ChatKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(MemberRole::parse("king").is_err());
    }

    #[test]
    fn join_matrix() {
        assert!(can_join(ChatKind::Group, false, None).is_ok());
        assert!(matches!(
            can_join(ChatKind::Group, true, None),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            can_join(ChatKind::Group, false, Some(MemberRole::Member)),
            Err(DomainError::Conflict(_))
        ));
        assert!(can_join(ChatKind::Direct, false, None).is_err());
    }

    #[test]
    fn only_members_post_and_only_owners_delete() {
        assert!(can_post(None).is_err());
        assert!(can_post(Some(MemberRole::Member)).is_ok());
        assert!(can_delete_chat(ChatKind::Group, Some(MemberRole::Owner)).is_ok());
        assert!(can_delete_chat(ChatKind::Group, Some(MemberRole::Admin)).is_err());
        assert!(can_delete_chat(ChatKind::Direct, Some(MemberRole::Owner)).is_err());
    }
}
