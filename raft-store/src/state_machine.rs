//! The state machine: applies committed entries to the registry.
//!
//! Each `apply` call runs as one registry transaction that also records the
//! last applied log id and membership, so the database and Raft's idea of
//! what was applied can never disagree after a crash. Client responses are
//! sent only after that transaction commits, so a client that got an answer
//! can read what it wrote.

use std::io;
use std::path::PathBuf;

use futures_util::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use registry::{ApplyOutcome, RaftMarks, Registry};
use serde::Serialize;

use crate::snapshot::{self, SnapshotFile};
use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// The registry as an openraft state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    registry: Registry,
    snapshot_path: PathBuf,
}

impl StateMachine {
    /// Wraps `registry`; the current snapshot is kept at `snapshot_path`
    /// (a JSON-lines file, see [`crate::snapshot`]).
    pub fn new(registry: Registry, snapshot_path: PathBuf) -> Self {
        Self {
            registry,
            snapshot_path,
        }
    }
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn to_json<T: Serialize>(value: &T) -> io::Result<String> {
    serde_json::to_string(value).map_err(io_err)
}

fn parse_marks(marks: &RaftMarks) -> io::Result<(Option<LogId>, StoredMembership)> {
    let applied = match &marks.last_applied {
        Some(json) => Some(serde_json::from_str(json).map_err(io_err)?),
        None => None,
    };
    let membership = match &marks.last_membership {
        Some(json) => serde_json::from_str(json).map_err(io_err)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let marks = self.registry.raft_marks().await.map_err(io_err)?;
        parse_marks(&marks)
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut marks = self.registry.raft_marks().await.map_err(io_err)?;
        let mut tx = self.registry.begin_apply().await.map_err(io_err)?;
        let mut replies = Vec::new();
        let mut applied_any = false;
        while let Some((entry, responder)) = entries.try_next().await? {
            applied_any = true;
            let log_id = entry.log_id();
            let outcomes = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(command) => {
                    let leaves: Vec<(&str, registry::Beside<'_>)> = command
                        .leaves
                        .iter()
                        .map(|p| (p.leaf.as_str(), p.beside()))
                        .collect();
                    let outcomes = match tx.apply_leaves(&leaves).await {
                        Ok(outcomes) => outcomes,
                        Err(e @ registry::RegistryError::UnsupportedEntry(_)) => {
                            // Fail-stop: the batch is not committed, Raft
                            // stops on the storage error, and a restart with
                            // a newer build applies the entry from the log.
                            tracing::error!(raft.index = log_id.index, error = %e, "Stopping: the log holds an entry this build cannot apply.");
                            return Err(io_err(e));
                        }
                        Err(e) => return Err(io_err(e)),
                    };
                    for outcome in &outcomes {
                        if let ApplyOutcome::Rejected(rejection) = outcome {
                            tracing::info!(raft.index = log_id.index, %rejection, "Entry rejected when applied.");
                        }
                    }
                    outcomes
                }
                EntryPayload::Membership(membership) => {
                    let stored = StoredMembership::new(Some(log_id), membership.clone());
                    marks.last_membership = Some(to_json(&stored)?);
                    Vec::new()
                }
            };
            marks.last_applied = Some(to_json(&log_id)?);
            replies.push((responder, outcomes));
        }
        if !applied_any {
            return Ok(());
        }
        tx.commit(&marks).await.map_err(io_err)?;
        for (responder, outcomes) in replies {
            if let Some(responder) = responder {
                responder.send(outcomes);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        // One transaction: the old ledger stays visible until the new one
        // is complete, and a failure leaves it as it was.
        let mut tx = self.registry.begin_install().await.map_err(io_err)?;
        let mut leaves = 0u64;
        for leaf in snapshot.leaves()? {
            tx.append_snapshot_leaf(&leaf?).await.map_err(io_err)?;
            leaves += 1;
        }
        // The metadata is authoritative for what the snapshot covers.
        let marks = RaftMarks {
            last_applied: meta.last_log_id.as_ref().map(to_json).transpose()?,
            last_membership: Some(to_json(&meta.last_membership)?),
        };
        tx.commit(&marks).await.map_err(io_err)?;
        snapshot.copy_to(&self.snapshot_path)?;
        tracing::info!(
            ledger.tree_size = leaves,
            "Installed a snapshot from the leader."
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let mut file = match SnapshotFile::open(&self.snapshot_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.read_meta()?;
        Ok(Some(Snapshot {
            meta,
            snapshot: file,
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (meta, file) = snapshot::build(&self.registry, &self.snapshot_path, |marks| {
            let (last_log_id, last_membership) = parse_marks(marks)?;
            Ok(SnapshotMeta {
                last_log_id,
                last_membership,
            })
        })
        .await?;
        Ok(Snapshot {
            meta,
            snapshot: file,
        })
    }
}
