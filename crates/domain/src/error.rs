use std::collections::BTreeMap;

/// Field name → the problems found with it, in the order found.
/// Serialized as `{"<field>": ["<problem>", ...]}` in the native door's validation errors.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Why a use case was refused.
///
/// Each refusal names its exact reason (one enum variant per reason, the text in one place, as
/// Lemmy's `LemmyErrorType` does), so each door maps reasons to its own wire format; the native
/// door maps the kind: `Invalid` → 400, `Unauthorized` → 401, `Forbidden` → 403, `NotFound` →
/// 404, `Conflict` → 409, `RateLimited` → 429.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// One or more input fields are malformed; nothing was changed.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Credentials or tokens are missing, wrong or expired.
    #[error("{0}")]
    Unauthorized(UnauthorizedReason),
    /// The actor is known but may not do this (e.g. posting in a chat they are not a member of).
    #[error("{0}")]
    Forbidden(ForbiddenReason),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(NotFoundReason),
    /// The change would break a uniqueness rule (duplicate username, already a member, ...).
    #[error("{0}")]
    Conflict(ConflictReason),
    /// Over a rate limit; nothing was done. Retry after `retry_after_secs` seconds.
    #[error("Too many requests; retry in {retry_after_secs} s.")]
    RateLimited {
        /// Seconds until the limit's window ends.
        retry_after_secs: u64,
    },
}

/// Why credentials were refused (401); the texts are simplejwt's, as seed 002's clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnauthorizedReason {
    /// Unknown username or wrong password (one answer for both: no account probing).
    #[error("No active account found with the given credentials")]
    BadCredentials,
    /// A refresh token that is malformed, expired, revoked or already used.
    #[error("Token is invalid or expired")]
    BadToken,
}

/// Why an actor may not do this (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ForbiddenReason {
    /// The actor is not a member of the chat.
    #[error("You are not a member of this chat.")]
    NotMember,
    /// The member to drop (leaving, or being removed) is not in the chat (any more).
    #[error("Not a member of this chat.")]
    NoLongerMember,
    /// Joining a private group without an invitation.
    #[error("This group is private: join by invitation.")]
    PrivateGroup,
    /// Joining a chat that is not a group.
    #[error("Only groups can be joined.")]
    JoinNotGroup,
    /// Leaving a chat that is not a group.
    #[error("Only groups can be left.")]
    LeaveNotGroup,
    /// Deleting a group as anyone but its owner.
    #[error("Only the owner may delete this group.")]
    DeleteNotOwner,
    /// Deleting a chat that is not a group.
    #[error("Only groups can be deleted.")]
    DeleteNotGroup,
    /// Adding members as a plain member.
    #[error("Only the owner or an admin may add members.")]
    AddNotAdmin,
    /// Adding members to a chat that is not a group.
    #[error("Only groups take new members.")]
    AddNotGroup,
    /// Renaming a group as a plain member.
    #[error("Only the owner or an admin may rename this group.")]
    RenameNotAdmin,
    /// Renaming a chat that is not a group.
    #[error("Only groups can be renamed.")]
    RenameNotGroup,
    /// Removing a member from a chat that is not a group.
    #[error("Only groups have members to remove.")]
    RemoveNotGroup,
    /// Removing oneself (leaving is its own action).
    #[error("Leave the group instead of removing yourself.")]
    RemoveSelf,
    /// An admin removing the owner or another admin.
    #[error("Admins may remove members only, not the owner or other admins.")]
    RemoveAboveRole,
    /// Removing members as a plain member.
    #[error("Only the owner or an admin may remove members.")]
    RemoveNotAdmin,
    /// Changing a role in a chat that is not a group.
    #[error("Only group members have roles.")]
    RolesNotGroup,
    /// Changing a role as anyone but the owner.
    #[error("Only the owner may change roles.")]
    RolesNotOwner,
    /// Editing or deleting another user's message, or a system line.
    #[error("Only the author may change this message.")]
    NotAuthor,
    /// Answering a support chat as a user who is not an operator.
    #[error("Only operators answer support chats.")]
    NotOperator,
    /// A direct chat with a user who is not a friend.
    #[error("This user is not your friend.")]
    NotFriend,
}

/// What was not found (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotFoundReason {
    /// No such user (or a deleted one).
    #[error("User not found.")]
    User,
    /// No such chat.
    #[error("Chat not found.")]
    Chat,
    /// No group of that name.
    #[error("Group not found.")]
    Group,
    /// No such message in the chat.
    #[error("Message not found.")]
    Message,
    /// The user named is not a member of the chat.
    #[error("That user is not a member of this chat.")]
    Member,
}

/// Which uniqueness rule a change would break (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConflictReason {
    /// The username is taken.
    #[error("A user with that username already exists.")]
    UsernameTaken,
    /// The email is taken.
    #[error("A user with that email already exists.")]
    EmailTaken,
    /// The username is confusable with a taken one (Unicode TR39 skeleton).
    #[error("That username looks too much like an existing one.")]
    UsernameLookalike,
    /// A name kept for the system (e.g. "system", "admin").
    #[error("This name is reserved.")]
    NameReserved,
    /// A group with this name exists.
    #[error("A group with this name already exists.")]
    GroupNameTaken,
    /// A door 001 chat with this name exists.
    #[error("A chat with this name already exists.")]
    ChatNameTaken,
    /// The actor joining is a member already.
    #[error("You are already a member of this chat.")]
    AlreadyMember,
    /// The user being added is a member already.
    #[error("Already a member of this chat.")]
    UserAlreadyMember,
    /// The user is a friend already.
    #[error("This user is already your friend.")]
    AlreadyFriend,
    /// The `client_id` names a message of another chat.
    #[error("This client_id was already used for a message in another chat.")]
    ClientIdElsewhere,
}

impl DomainError {
    /// A single-field validation error.
    pub fn invalid(field: &str, problem: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![problem.into()]);
        Self::Invalid(fields)
    }

    /// Merges several parse results' errors into one `Invalid`, so a client learns about every bad
    /// field at once. Non-`Invalid` errors are returned as they are.
    pub fn merge(errors: impl IntoIterator<Item = DomainError>) -> Option<DomainError> {
        let mut fields = FieldErrors::new();
        for error in errors {
            match error {
                DomainError::Invalid(more) => {
                    for (field, problems) in more {
                        fields.entry(field).or_default().extend(problems);
                    }
                }
                other => return Some(other),
            }
        }
        (!fields.is_empty()).then_some(DomainError::Invalid(fields))
    }
}
