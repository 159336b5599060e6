//! The durable Raft log, on raft-log.
//!
//! raft-log keeps entries, the vote, the committed id and the purge point in
//! one append-only WAL of chunk files, written and fsynced by a background
//! worker that calls back when a flush is on disk. openraft is told an append
//! is durable only from that callback, which is what makes an acknowledged
//! write survive `kill -9` or power loss.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogIdOptionExt, LogState, OptionalSend, RaftLogReader};
use raft_log::RaftLog;
use raft_log::api::raft_log_writer::RaftLogWriter;
use tokio::sync::{RwLock, oneshot};

use crate::codec::Json;
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// raft-log's view of our types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WalTypes;

impl raft_log::Types for WalTypes {
    type LogId = Json<LogId>;
    type LogPayload = Json<Entry>;
    type Vote = Json<Vote>;
    type Callback = FlushCallback;
    type UserData = Json<()>;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.0.index
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        // Sizes raft-log's read cache, which must stay within its byte
        // budget: a registration with video prints is megabytes, not the
        // kilobyte a guess would say.
        match &payload.0.payload {
            openraft::EntryPayload::Normal(command) => command.payload_len() as u64 + 128,
            _ => 256,
        }
    }
}

/// Routes a finished flush to whoever waits for it.
pub(crate) enum FlushCallback {
    /// openraft's own notification that an append is durable.
    Raft(IOFlushed<TypeConfig>),
    /// A caller of ours awaiting the fsync.
    Wait(oneshot::Sender<Result<(), io::Error>>),
}

impl raft_log::Callback for FlushCallback {
    fn send(self, res: Result<(), io::Error>) {
        match self {
            Self::Raft(flushed) => flushed.io_completed(res),
            Self::Wait(tx) => {
                if tx.send(res).is_err() {
                    tracing::warn!("a raft log flush finished after its waiter went away");
                }
            }
        }
    }
}

/// The Raft log store. Clones share one raft-log instance.
#[derive(Clone)]
pub struct LogStore {
    log: Arc<RwLock<RaftLog<WalTypes>>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (creating if needed) the log in `dir`.
    pub fn open(dir: &Path) -> Result<Self, io::Error> {
        // raft-log locks a file in `dir` but does not create `dir`.
        std::fs::create_dir_all(dir)?;
        let config = raft_log::Config::new(dir.display().to_string());
        let log = RaftLog::open(Arc::new(config))?;
        Ok(Self {
            log: Arc::new(RwLock::new(log)),
        })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => u64::MAX,
        };
        let log = self.log.read().await;
        log.read(start, end)
            .map(|res| res.map(|(_id, payload)| payload.0))
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let log = self.log.read().await;
        Ok(log.log_state().vote().map(|v| v.0))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let log = self.log.read().await;
        let state = log.log_state();
        // raft-log moves `last` up to the purge point when a purge empties
        // the log, so `last` is never behind `purged`.
        Ok(LogState {
            last_purged_log_id: state.purged().map(|id| id.0),
            last_log_id: state.last().map(|id| id.0),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut log = self.log.write().await;
            log.save_vote(Json(*vote))?;
            log.flush(true, Some(FlushCallback::Wait(tx)))?;
        }
        // A vote must be on disk before it is acted on: a node that forgot
        // its vote after a crash could vote twice in one term.
        rx.await.map_err(io::Error::other)?
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let Some(committed) = committed else {
            return Ok(());
        };
        // No fsync of its own: the committed id only saves re-applying a few
        // entries after a restart, and it reaches disk with the next append.
        self.log.write().await.commit(Json(committed))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let log = self.log.read().await;
        Ok(log.log_state().committed().map(|id| id.0))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
    {
        let records = entries
            .into_iter()
            .map(|entry| (Json(entry.log_id()), Json(entry)));
        let mut log = self.log.write().await;
        log.append(records)?;
        // fsync before openraft may count these entries towards a quorum or
        // acknowledge a client: the callback fires only once they are on disk.
        log.flush(true, Some(FlushCallback::Raft(callback)))?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let at = last_log_id.next_index();
        let mut log = self.log.write().await;
        if at >= log.log_state().last().map(|id| id.0).next_index() {
            return Ok(());
        }
        // No fsync: if the truncation is lost in a crash, the leader sends the
        // conflicting range again and openraft truncates it again.
        log.truncate(at)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut log = self.log.write().await;
        if log_id.index < log.log_state().purged().map(|id| id.0).next_index() {
            return Ok(());
        }
        log.purge(Json(log_id))?;
        // A lost purge record costs nothing (openraft purges again), but
        // raft-log deletes purged chunk files only after a synced flush has
        // made the purge record durable; queue one without waiting for it.
        log.flush(true, None)?;
        Ok(())
    }
}
