use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype!(
    /// A user's id (`users.id`), a JSON number on the wire.
    UserId
);
id_newtype!(
    /// A chat's id (`chats.id`), a JSON number on the wire.
    ChatId
);
id_newtype!(
    /// A message's global id (`messages.id`); within a chat messages are ordered by `seq`.
    MessageId
);
