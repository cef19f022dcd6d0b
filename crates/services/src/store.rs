//! The services' store: the storage handles (`chat-storage`) plus the message writer, which is
//! the services' own (a read never needs it).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use chat_storage::StoreConfig;

use crate::Result;
use crate::writer::MessageWriter;

/// The PostgreSQL pool and Redis of [`chat_storage::Store`], plus the message writer.
///
/// Cheap to clone (everything inside is shared). Dereferences to the storage store, so every
/// read (`chat_selectors::*`) takes it as it is.
#[derive(Clone)]
pub struct Store {
    storage: chat_storage::Store,
    /// The message writer (group commit), once [`crate::start_writer`] has filled it; shared by
    /// every clone. Empty (sends write directly, one statement each) in processes that never
    /// start one, such as the CLI commands.
    pub(crate) writer: Arc<OnceLock<MessageWriter>>,
}

impl Store {
    /// The services' store over `storage`, with no writer started.
    pub fn new(storage: chat_storage::Store) -> Self {
        Self {
            storage,
            writer: Arc::new(OnceLock::new()),
        }
    }

    /// Connects as [`chat_storage::Store::connect`] does.
    ///
    /// Errors: `Pool` for a malformed database URL, `Cache` when Redis is unreachable.
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        Ok(Self::new(chat_storage::Store::connect(config).await?))
    }
}

impl Deref for Store {
    type Target = chat_storage::Store;

    fn deref(&self) -> &chat_storage::Store {
        &self.storage
    }
}
