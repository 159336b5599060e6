//! Reads of registered content.

use std::collections::HashMap;

use sqlx::Row;

use super::{Param, Registry, Statement, from_i64};
use crate::Result;
use crate::entry::{ContentClaim, ContentRegistration, EntryBody};

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

/// A claim by hash and where it sits in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRecord {
    /// Leaf index of the claim.
    pub ledger_index: u64,
    /// The claim as recorded.
    pub claim: ContentClaim,
}

impl Registry {
    /// The claim recorded under `content_id`.
    pub async fn claim(&self, content_id: &str) -> Result<Option<ClaimRecord>> {
        self.claim_where("content_id", content_id).await
    }

    /// The claim of the file with this SHA-256 (lowercase hex).
    pub async fn claim_by_sha256(&self, sha256: &str) -> Result<Option<ClaimRecord>> {
        self.claim_where("sha256", sha256).await
    }

    async fn claim_where(&self, column: &'static str, value: &str) -> Result<Option<ClaimRecord>> {
        // `column` is one of two literals above, never user input.
        let sql = format!(
            "select e.idx, e.leaf from content_claim c join ledger_entry e on e.idx = c.ledger_idx where c.{column} = $1"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let ledger_index = from_i64(row.try_get(0)?)?;
        let leaf: String = row.try_get(1)?;
        let EntryBody::ContentClaimed(claim) = crate::LedgerEntry::from_leaf(&leaf)?.body else {
            return Err(crate::RegistryError::Corrupt(format!(
                "claim row points at leaf {ledger_index}, which is not a claim"
            )));
        };
        Ok(Some(ClaimRecord {
            ledger_index,
            claim,
        }))
    }

    /// The content id holding each SHA-256 of `sha256s` (lowercase hex)
    /// that is registered or claimed; a registration wins over a claim.
    /// One query per thousand hashes, for batches.
    pub async fn holders_by_sha256(&self, sha256s: &[String]) -> Result<HashMap<String, String>> {
        let mut holders = HashMap::new();
        for chunk in sha256s.chunks(1000) {
            let list = || chunk.iter().map(|sha256| Param::Text(sha256));
            // Claims first, so that a registration of the same bytes
            // overwrites its claim.
            let mut statement = Statement::new(self.sqlite);
            statement
                .sql("select sha256, content_id, 0 as registered from content_claim where sha256 in (")
                .list(list())
                .sql(") union all select sha256, content_id, 1 from content where sha256 in (")
                .list(list())
                .sql(") order by registered");
            let query = statement.query();
            for row in query.fetch_all(&self.pool).await? {
                holders.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(holders)
    }

    /// The content ids registered and claimed under this SHA-256 (lowercase
    /// hex), in one query and without reading their leaves: for the checks
    /// before a registration is proposed.
    pub async fn ids_by_sha256(&self, sha256: &str) -> Result<(Option<String>, Option<String>)> {
        let rows = sqlx::query(
            "select content_id, 'registered' as kind from content where sha256 = $1 \
             union all select content_id, 'claimed' from content_claim where sha256 = $1",
        )
        .bind(sha256)
        .fetch_all(&self.pool)
        .await?;
        let (mut registered, mut claimed) = (None, None);
        for row in rows {
            let id: String = row.try_get(0)?;
            let kind: String = row.try_get(1)?;
            if kind == "registered" {
                registered = Some(id);
            } else {
                claimed = Some(id);
            }
        }
        Ok((registered, claimed))
    }
}
