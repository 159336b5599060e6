//! Reads of registered content.

use sqlx::Row;

use super::{Registry, from_i64};
use crate::Result;
use crate::entry::{ContentRegistration, EntryBody};

/// A registration and where it sits in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentRecord {
    /// Leaf index of the registration.
    pub ledger_index: u64,
    /// The registration as recorded.
    pub registration: ContentRegistration,
}

impl Registry {
    /// The content registered under `content_id`.
    pub async fn content(&self, content_id: &str) -> Result<Option<ContentRecord>> {
        self.content_where("content_id", content_id).await
    }

    /// The content whose bytes have this SHA-256 (lowercase hex).
    pub async fn content_by_sha256(&self, sha256: &str) -> Result<Option<ContentRecord>> {
        self.content_where("sha256", sha256).await
    }

    async fn content_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<ContentRecord>> {
        // `column` is one of two literals above, never user input.
        let sql = format!(
            "select e.idx, e.leaf from content c join ledger_entry e on e.idx = c.ledger_idx where c.{column} = $1"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let ledger_index = from_i64(row.try_get(0)?)?;
        let leaf: String = row.try_get(1)?;
        let EntryBody::ContentRegistered(registration) = crate::LedgerEntry::from_leaf(&leaf)?.body
        else {
            return Err(crate::RegistryError::Corrupt(format!(
                "content row points at leaf {ledger_index}, which is not a registration"
            )));
        };
        Ok(Some(ContentRecord {
            ledger_index,
            registration,
        }))
    }
}
