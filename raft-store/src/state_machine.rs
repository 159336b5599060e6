//! The state machine: applies committed entries to the registry.
//!
//! Each `apply` call runs as one registry transaction that also records the
//! last applied log id and membership, so the database and Raft's idea of
//! what was applied can never disagree after a crash. Client responses are
//! sent only after that transaction commits, so a client that got an answer
//! can read what it wrote.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use registry::{ApplyOutcome, LedgerSnapshot, RaftMarks, Registry};
use serde::{Deserialize, Serialize};

use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// The registry as an openraft state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    registry: Registry,
    snapshot_path: PathBuf,
}

impl StateMachine {
    /// Wraps `registry`; the current snapshot is kept at `snapshot_path`.
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
    type SnapshotData = LedgerSnapshot;
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
                    let mut outcomes = Vec::with_capacity(command.leaves.len());
                    for proposed in &command.leaves {
                        let outcome = match tx
                            .apply_leaf(&proposed.leaf, proposed.prints.as_deref())
                            .await
                        {
                            Ok(outcome) => outcome,
                            Err(e @ registry::RegistryError::UnsupportedEntry(_)) => {
                                // Fail-stop: the batch is not committed, Raft
                                // stops on the storage error, and a restart with
                                // a newer build applies the entry from the log.
                                tracing::error!(raft.index = log_id.index, error = %e, "Stopping: the log holds an entry this build cannot apply.");
                                return Err(io_err(e));
                            }
                            Err(e) => return Err(io_err(e)),
                        };
                        if let ApplyOutcome::Rejected(rejection) = &outcome {
                            tracing::info!(raft.index = log_id.index, %rejection, "Entry rejected when applied.");
                        }
                        outcomes.push(outcome);
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
        mut snapshot: LedgerSnapshot,
    ) -> Result<(), io::Error> {
        // The metadata is authoritative for what the snapshot covers.
        snapshot.last_applied = meta.last_log_id.as_ref().map(to_json).transpose()?;
        snapshot.last_membership = Some(to_json(&meta.last_membership)?);
        self.registry
            .install_snapshot(&snapshot)
            .await
            .map_err(io_err)?;
        save_snapshot(&self.snapshot_path, meta, &snapshot)?;
        tracing::info!(
            ledger.tree_size = snapshot.leaves.len(),
            "Installed a snapshot from the leader."
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        load_snapshot(&self.snapshot_path)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = LedgerSnapshot;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = self.registry.snapshot().await.map_err(io_err)?;
        let (last_log_id, last_membership) = parse_marks(&RaftMarks {
            last_applied: data.last_applied.clone(),
            last_membership: data.last_membership.clone(),
        })?;
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
        };
        save_snapshot(&self.snapshot_path, &meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: LedgerSnapshot,
}

#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a SnapshotMeta,
    data: &'a LedgerSnapshot,
}

/// Writes the current snapshot atomically: a crash leaves the old file or
/// the new one, never a torn one.
fn save_snapshot(path: &Path, meta: &SnapshotMeta, data: &LedgerSnapshot) -> io::Result<()> {
    use std::io::Write;
    let bytes = serde_json::to_vec(&SnapshotFileRef { meta, data }).map_err(io_err)?;
    // A temporary name of its own for every write: a snapshot being built
    // and one being installed must never share one.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{n}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        // The rename below must not become visible before the data is on
        // disk, or a crash could leave an empty snapshot in place.
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Persist the rename itself.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn load_snapshot(path: &Path) -> io::Result<Option<Snapshot>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(io_err)?;
    Ok(Some(Snapshot {
        meta: file.meta,
        snapshot: file.data,
    }))
}
