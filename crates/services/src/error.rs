//! The services' error: the storage layers' one [`Error`] (re-exported from `chat-storage`).

pub use chat_storage::{
    Error, Result, foreign_key_violation, transient_database_fault, unique_violation,
};
