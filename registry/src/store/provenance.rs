//! Provenance queries across aggregates: the events of one content item,
//! and the derived-from graph around it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sqlx::{AnyConnection, Row};

use super::{Registry, from_i64};
use crate::Result;

/// The most items a derivations answer walks to, each way.
pub const MAX_GRAPH_ITEMS: usize = 1000;

/// Every event of a content item, read at one state of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Leaf indexes in ledger order: the registration, transfers, licences,
    /// sublicences, licence transfers and revocations, and registrations
    /// derived from the item.
    pub events: Vec<u64>,
    /// The size of the tree they were read at.
    pub tree_size: u64,
}

/// One derived-from link: `child` names `parent` in its registration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Derivation {
    /// The item derived from.
    pub parent_id: String,
    /// The item derived.
    pub child_id: String,
    /// The child's registration, which records the link.
    pub ledger_index: u64,
}

/// The derived-from graph around an item, transitively both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivations {
    /// Items the item derives from, nearest first.
    pub ancestors: Vec<String>,
    /// Items derived from the item, nearest first.
    pub descendants: Vec<String>,
    /// Every link among them, in ledger order.
    pub links: Vec<Derivation>,
    /// Each item's registration (or claim) leaf, the item's own included.
    pub registrations: BTreeMap<String, u64>,
    /// Whether a walk stopped at [`MAX_GRAPH_ITEMS`].
    pub truncated: bool,
    /// The size of the tree it was read at.
    pub tree_size: u64,
}

async fn registration(conn: &mut AnyConnection, content_id: &str) -> Result<Option<u64>> {
    let row = sqlx::query(
        "select ledger_idx from content where content_id = $1 \
         union all select ledger_idx from content_claim where content_id = $1",
    )
    .bind(content_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| from_i64(row.try_get(0)?)).transpose()
}

/// The links one step from `content_id`: towards its parents (`up`) or
/// its children.
async fn links(conn: &mut AnyConnection, content_id: &str, up: bool) -> Result<Vec<Derivation>> {
    let sql = if up {
        "select parent_id, child_id, ledger_idx from derivation where child_id = $1"
    } else {
        "select parent_id, child_id, ledger_idx from derivation where parent_id = $1"
    };
    let rows = sqlx::query(sql)
        .bind(content_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Derivation {
                parent_id: row.try_get(0)?,
                child_id: row.try_get(1)?,
                ledger_index: from_i64(row.try_get(2)?)?,
            })
        })
        .collect()
}

impl Registry {
    /// Every event of `content_id`, or `None` if no registration or claim
    /// has this id.
    pub async fn history(&self, content_id: &str) -> Result<Option<History>> {
        let mut tx = self.read_snapshot().await?;
        if registration(&mut tx, content_id).await?.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "select ledger_idx from content where content_id = $1 \
             union select ledger_idx from content_claim where content_id = $1 \
             union select since_idx from holding where content_id = $1 \
             union select until_idx from holding where content_id = $1 and until_idx is not null \
             union select granted_idx from licence where content_id = $1 \
             union select revoked_idx from licence where content_id = $1 and revoked_idx is not null \
             union select l.since_idx from licensee l join licence c on c.licence_id = l.licence_id \
                 where c.content_id = $1 \
             union select ledger_idx from derivation where parent_id = $1",
        )
        .bind(content_id)
        .fetch_all(&mut *tx)
        .await?;
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        let mut events = rows
            .iter()
            .map(|row| from_i64(row.try_get(0)?))
            .collect::<Result<Vec<_>>>()?;
        events.sort_unstable();
        Ok(Some(History { events, tree_size }))
    }

    /// The derived-from graph around `content_id`, or `None` if no
    /// registration or claim has this id.
    pub async fn derivations(&self, content_id: &str) -> Result<Option<Derivations>> {
        let mut tx = self.read_snapshot().await?;
        let Some(own) = registration(&mut tx, content_id).await? else {
            return Ok(None);
        };
        let mut registrations = BTreeMap::from([(content_id.to_owned(), own)]);
        let mut all_links = BTreeSet::new();
        let mut truncated = false;
        let mut walks: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        for (walk, up) in walks.iter_mut().zip([true, false]) {
            let mut seen = BTreeSet::from([content_id.to_owned()]);
            let mut queue = VecDeque::from([content_id.to_owned()]);
            while let Some(item) = queue.pop_front() {
                for link in links(&mut tx, &item, up).await? {
                    let next = if up {
                        link.parent_id.clone()
                    } else {
                        link.child_id.clone()
                    };
                    all_links.insert((link.ledger_index, link));
                    if seen.contains(&next) {
                        continue;
                    }
                    if walk.len() >= MAX_GRAPH_ITEMS {
                        truncated = true;
                        continue;
                    }
                    seen.insert(next.clone());
                    if let Some(idx) = registration(&mut tx, &next).await? {
                        registrations.insert(next.clone(), idx);
                    }
                    walk.push(next.clone());
                    queue.push_back(next);
                }
            }
        }
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        let [ancestors, descendants] = walks;
        // A link whose far end the walk did not reach (truncated) is left
        // out, so every link's two items are in the answer.
        let links = all_links
            .into_iter()
            .map(|(_, link)| link)
            .filter(|l| {
                registrations.contains_key(&l.parent_id) && registrations.contains_key(&l.child_id)
            })
            .collect();
        Ok(Some(Derivations {
            ancestors,
            descendants,
            links,
            registrations,
            truncated,
            tree_size,
        }))
    }
}
