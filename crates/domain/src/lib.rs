//! The chat core's pure rules: entities, id newtypes, validated values, who may do what, and the
//! domain error. Nothing here does I/O; every other crate builds on these types.
//!
//! Values parse, they don't "validate later": once you hold a [`Username`] it is valid.

mod error;
mod ids;
mod rules;
mod values;

pub use error::{
    ConflictReason, DomainError, FieldErrors, ForbiddenReason, NotFoundReason, UnauthorizedReason,
};
pub use ids::{ChatId, MessageId, UserId};
pub use rules::{
    ChatKind, MemberRole, MessageKind, UserRole, can_change_message, can_delete_chat, can_invite,
    can_join, can_post, can_remove, can_rename, can_set_role,
};
pub use values::{ChatName, ClientId, Email, GroupName, MessageText, Password, Title, Username};
