//! Who may read, post, join and delete. Pure functions over roles and chat kinds.

use crate::DomainError;
use crate::error::{ConflictReason, ForbiddenReason, NotFoundReason};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
/// Errors: `Forbidden(NotMember)`.
pub fn can_post(membership: Option<MemberRole>) -> Result<(), DomainError> {
    membership
        .map(|_| ())
        .ok_or(DomainError::Forbidden(ForbiddenReason::NotMember))
}

/// May a user join this chat by themselves? Only public groups (seed 002: "join group"; private
/// groups are invite only). Errors: `Forbidden`, or `Conflict` when already a member.
pub fn can_join(
    kind: ChatKind,
    is_private: bool,
    membership: Option<MemberRole>,
) -> Result<(), DomainError> {
    if membership.is_some() {
        return Err(DomainError::Conflict(ConflictReason::AlreadyMember));
    }
    match kind {
        ChatKind::Group if !is_private => Ok(()),
        ChatKind::Group => Err(DomainError::Forbidden(ForbiddenReason::PrivateGroup)),
        _ => Err(DomainError::Forbidden(ForbiddenReason::JoinNotGroup)),
    }
}

/// May this member delete the whole chat? Only a group's owner (docs/doors.md, door 002 decision).
/// Errors: `Forbidden`.
pub fn can_delete_chat(kind: ChatKind, membership: Option<MemberRole>) -> Result<(), DomainError> {
    match (kind, membership) {
        (ChatKind::Group, Some(MemberRole::Owner)) => Ok(()),
        (ChatKind::Group, _) => Err(DomainError::Forbidden(ForbiddenReason::DeleteNotOwner)),
        _ => Err(DomainError::Forbidden(ForbiddenReason::DeleteNotGroup)),
    }
}

/// May `actor` add members to the chat? Owners and admins of a group (docs/doors.md: "invite/kick:
/// owner or admin"). Errors: `Forbidden`.
pub fn can_invite(kind: ChatKind, actor: Option<MemberRole>) -> Result<(), DomainError> {
    match (kind, actor) {
        (ChatKind::Group, Some(MemberRole::Owner | MemberRole::Admin)) => Ok(()),
        (ChatKind::Group, _) => Err(DomainError::Forbidden(ForbiddenReason::AddNotAdmin)),
        _ => Err(DomainError::Forbidden(ForbiddenReason::AddNotGroup)),
    }
}

/// May `actor` rename the chat? Owners and admins of a group, as for inviting (direct chats
/// have no title: they show the other member's name). Errors: `Forbidden`.
pub fn can_rename(kind: ChatKind, actor: Option<MemberRole>) -> Result<(), DomainError> {
    match (kind, actor) {
        (ChatKind::Group, Some(MemberRole::Owner | MemberRole::Admin)) => Ok(()),
        (ChatKind::Group, _) => Err(DomainError::Forbidden(ForbiddenReason::RenameNotAdmin)),
        _ => Err(DomainError::Forbidden(ForbiddenReason::RenameNotGroup)),
    }
}

/// May `actor` remove `target` from the chat? The owner removes anyone else; an admin removes
/// plain members; nobody removes themselves this way (they leave). Errors: `Forbidden`.
pub fn can_remove(
    kind: ChatKind,
    actor: Option<MemberRole>,
    target: MemberRole,
    is_self: bool,
) -> Result<(), DomainError> {
    if kind != ChatKind::Group {
        return Err(DomainError::Forbidden(ForbiddenReason::RemoveNotGroup));
    }
    if is_self {
        return Err(DomainError::Forbidden(ForbiddenReason::RemoveSelf));
    }
    match (actor, target) {
        (Some(MemberRole::Owner), _) => Ok(()),
        (Some(MemberRole::Admin), MemberRole::Member) => Ok(()),
        (Some(MemberRole::Admin), _) => {
            Err(DomainError::Forbidden(ForbiddenReason::RemoveAboveRole))
        }
        _ => Err(DomainError::Forbidden(ForbiddenReason::RemoveNotAdmin)),
    }
}

/// May `actor` give a member the role `new_role`?
///
/// Only the owner: promoting to admin, demoting to member, or handing over ownership (`Owner`: the
/// actor becomes an admin). Errors: `Forbidden`, or `Invalid{"role"}` for changing one's own role.
pub fn can_set_role(
    kind: ChatKind,
    actor: Option<MemberRole>,
    is_self: bool,
) -> Result<(), DomainError> {
    if kind != ChatKind::Group {
        return Err(DomainError::Forbidden(ForbiddenReason::RolesNotGroup));
    }
    if actor != Some(MemberRole::Owner) {
        return Err(DomainError::Forbidden(ForbiddenReason::RolesNotOwner));
    }
    if is_self {
        return Err(DomainError::invalid(
            "user_id",
            "Hand ownership to another member instead of changing your own role.",
        ));
    }
    Ok(())
}

/// May `actor` edit or delete a message by `author`?
///
/// Only its author, only text messages, not once deleted (seed-independent rule of the native door:
/// "author only"). Errors: `Forbidden`, `NotFound` for a deleted message.
pub fn can_change_message(
    actor: crate::UserId,
    author: Option<crate::UserId>,
    kind: MessageKind,
    deleted: bool,
) -> Result<(), DomainError> {
    if deleted {
        return Err(DomainError::NotFound(NotFoundReason::Message));
    }
    if kind != MessageKind::Text || author != Some(actor) {
        return Err(DomainError::Forbidden(ForbiddenReason::NotAuthor));
    }
    Ok(())
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
            Err(DomainError::Forbidden(ForbiddenReason::PrivateGroup))
        ));
        assert!(matches!(
            can_join(ChatKind::Group, false, Some(MemberRole::Member)),
            Err(DomainError::Conflict(ConflictReason::AlreadyMember))
        ));
        assert!(can_join(ChatKind::Direct, false, None).is_err());
    }

    #[test]
    fn role_matrix() {
        use MemberRole::*;
        let g = ChatKind::Group;
        assert!(can_invite(g, Some(Owner)).is_ok());
        assert!(can_invite(g, Some(Admin)).is_ok());
        assert!(can_invite(g, Some(Member)).is_err());
        assert!(can_invite(g, None).is_err());
        assert!(can_invite(ChatKind::Direct, Some(Owner)).is_err());

        assert!(can_rename(g, Some(Owner)).is_ok());
        assert!(can_rename(g, Some(Admin)).is_ok());
        assert!(can_rename(g, Some(Member)).is_err());
        assert!(can_rename(g, None).is_err());
        assert!(can_rename(ChatKind::Direct, Some(Member)).is_err());

        assert!(can_remove(g, Some(Owner), Admin, false).is_ok());
        assert!(can_remove(g, Some(Admin), Member, false).is_ok());
        assert!(can_remove(g, Some(Admin), Admin, false).is_err());
        assert!(can_remove(g, Some(Admin), Owner, false).is_err());
        assert!(can_remove(g, Some(Member), Member, false).is_err());
        assert!(can_remove(g, Some(Owner), Owner, true).is_err());

        assert!(can_set_role(g, Some(Owner), false).is_ok());
        assert!(can_set_role(g, Some(Admin), false).is_err());
        assert!(matches!(
            can_set_role(g, Some(Owner), true),
            Err(DomainError::Invalid(_))
        ));

        let (me, other) = (crate::UserId(1), crate::UserId(2));
        assert!(can_change_message(me, Some(me), MessageKind::Text, false).is_ok());
        assert!(can_change_message(me, Some(other), MessageKind::Text, false).is_err());
        assert!(can_change_message(me, None, MessageKind::System, false).is_err());
        assert!(matches!(
            can_change_message(me, Some(me), MessageKind::Text, true),
            Err(DomainError::NotFound(NotFoundReason::Message))
        ));
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
