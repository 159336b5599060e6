//! Persistence: the registry's tables, through sqlx's `Any` driver so one
//! code path serves SQLite (embedded default) and PostgreSQL (production).
//!
//! All SQL of the project lives under this module, one file per aggregate.
//! Writes happen only in [`ApplyTx`], which the Raft state machine drives;
//! everything else here is a read.

mod apply;
mod cluster;
mod content;
mod ledger;
mod licence;
mod party;
mod provenance;
mod rebuild;
mod rights;
mod signed;
mod similarity;
mod snapshot;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

pub use apply::{ApplyTx, Beside};
pub use cluster::{RecordedNode, verify_approval, voters_key};
pub use content::{ClaimRecord, ContentRecord};
pub use ledger::StoredEntry;
pub use licence::{LicenceRecord, Licences};
pub use party::PartyRecord;
pub use provenance::{Derivation, Derivations, History, MAX_GRAPH_ITEMS};
pub use rights::{Holdings, PartyHolding};
pub use similarity::{
    CodeKind, CodeMatch, MAX_INDEXED_DISTANCE, is_sampled, validate_claimed_iscc,
};
pub use snapshot::{SNAPSHOT_PAGE, SnapshotLeaf};

use crate::merkle::{Hash, PrefetchReader};
use crate::{RegistryError, Result};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Raft's bookkeeping as the registry stores it: opaque JSON written and read
/// by raft-store, kept here only so it commits atomically with the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftMarks {
    /// The last applied log id.
    pub last_applied: Option<String>,
    /// The last applied membership.
    pub last_membership: Option<String>,
}

/// A handle on the registry database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    pool: AnyPool,
    /// Where the state machine applies: on SQLite a connection of its own,
    /// so that its page cache stays valid between commands (SQLite drops a
    /// connection's cache whenever another connection wrote); on
    /// PostgreSQL the same pool.
    writer: AnyPool,
    /// Whether the database is SQLite (see [`Statement`]).
    sqlite: bool,
    /// SQLite's checkpointing connection (see [`Registry::checkpoint_wal`]).
    checkpointer: Option<AnyPool>,
}

impl Registry {
    /// A transaction in which every read sees one state of the ledger, for
    /// answers whose parts must agree (a projection and the tree size its
    /// proofs are for). SQLite's transactions read one snapshot already;
    /// PostgreSQL's default isolation would let each statement see a newer
    /// state.
    async fn read_snapshot(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        if !self.sqlite {
            sqlx::query("set transaction isolation level repeatable read, read only")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://...`) and
    /// brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = pool_options(sqlite, if sqlite { 4 } else { 16 })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        // An in-memory database is private to its connection: one pool.
        let file = sqlite && !url.contains(":memory:") && !url.contains("mode=memory");
        let (writer, checkpointer) = if file {
            (
                pool_options(true, 1).connect(url).await?,
                Some(pool_options(true, 1).connect(url).await?),
            )
        } else {
            (pool.clone(), None)
        };
        Ok(Self {
            pool,
            writer,
            sqlite,
            checkpointer,
        })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Copies what the WAL holds back into an SQLite database file, on a
    /// connection of its own, so that the state machine's commits rarely
    /// run a checkpoint themselves; returns the WAL's frames and how many
    /// of them are now in the database. A server calls it twice a second.
    /// Nothing to do on PostgreSQL or in memory.
    ///
    /// The copy waits for neither readers nor the writer (a passive
    /// checkpoint), so it can never make the state machine's writes fail.
    /// (A restarting one takes the write lock, and the writer's next
    /// transaction can then fail with SQLITE_BUSY, which stops Raft.) The
    /// WAL starts again from its beginning only when a write finds every
    /// frame copied, which a busy writer, appending while the copy runs,
    /// may not see for a while: the writer's own checkpoint at 256 MiB
    /// does it then, and has little left to copy.
    pub async fn checkpoint_wal(&self) -> Result<Option<(i64, i64)>> {
        let Some(checkpointer) = &self.checkpointer else {
            return Ok(None);
        };
        let row = sqlx::query("pragma wal_checkpoint(passive)")
            .fetch_one(checkpointer)
            .await?;
        Ok(Some((row.try_get(1)?, row.try_get(2)?)))
    }

    /// The Raft bookkeeping committed with the last applied batch.
    pub async fn raft_marks(&self) -> Result<RaftMarks> {
        let row = sqlx::query("select last_applied, last_membership from sm_state where id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(RaftMarks {
            last_applied: row.try_get(0)?,
            last_membership: row.try_get(1)?,
        })
    }

    /// Starts the transaction in which the state machine applies a batch.
    pub async fn begin_apply(&self) -> Result<ApplyTx> {
        ApplyTx::begin(&self.writer).await
    }
}

/// A pool of at most `max` connections, each set up for its engine.
fn pool_options(sqlite: bool, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        // An embedded SQLite connection cannot drop, and the ping before
        // every acquire would be one more round trip to the connection's
        // worker thread on every query.
        .test_before_acquire(!sqlite)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if sqlite {
                    configure_sqlite(conn).await?;
                }
                Ok(())
            })
        })
}

/// Per-connection SQLite settings.
async fn configure_sqlite(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // WAL lets API reads run while the state machine writes.
    conn.execute("pragma journal_mode = wal").await?;
    // FULL makes every commit fsync the WAL. The state machine's commit is
    // what lets openraft purge the Raft log behind it, so a commit that a
    // power cut could undo would lose acknowledged entries for good.
    conn.execute("pragma synchronous = full").await?;
    // The single writer and the readers wait for each other instead of
    // failing with SQLITE_BUSY.
    conn.execute("pragma busy_timeout = 10000").await?;
    conn.execute("pragma foreign_keys = on").await?;
    // Applying a command runs under a savepoint, so SQLite copies each page
    // it first changes to a statement journal; in memory that costs a copy,
    // in a temporary file a write system call.
    conn.execute("pragma temp_store = memory").await?;
    // 64 MiB of page cache per connection: index probes for matching touch
    // pages all over the similarity indexes, and the state machine's inserts
    // into the random-keyed indexes (SHA-256, code bands) do too.
    conn.execute("pragma cache_size = -65536").await?;
    // The WAL is copied back into the database by `Registry::checkpoint_wal`
    // on a connection of its own, off the write path: a checkpoint run by
    // the committing connection stalls the state machine for as long as it
    // copies (tens of milliseconds once the random-keyed indexes spread
    // each command's writes over many pages), and every write waiting on
    // the apply with it. The committing connection still checkpoints once
    // the WAL reaches 256 MiB, which bounds it when nothing else does (a
    // command-line rebuild, or a checkpointer that falls behind).
    // Durability is the WAL's, which every commit fsyncs.
    conn.execute("pragma wal_autocheckpoint = 65536").await?;
    Ok(())
}

/// Runs a `tlog_tiles` computation, fetching the stored hashes it asks for
/// from the database. Two passes: one to learn the indexes, one to compute.
pub(crate) async fn with_hashes<T>(
    conn: &mut AnyConnection,
    compute: impl Fn(&PrefetchReader) -> Result<T, tlog_tiles::Error>,
) -> Result<T> {
    let mut reader = PrefetchReader::default();
    for _pass in 0..3 {
        match compute(&reader) {
            Ok(value) => return Ok(value),
            Err(tlog_tiles::Error::IndexesNotInTree) => {
                let missing = reader.take_missing();
                if missing.is_empty() {
                    break;
                }
                for (id, hash) in fetch_hashes(conn, &missing).await? {
                    reader.insert(id, hash);
                }
            }
            Err(e) => return Err(RegistryError::Corrupt(format!("merkle computation: {e}"))),
        }
    }
    Err(RegistryError::Corrupt(
        "merkle hashes the tree needs are missing from the store".into(),
    ))
}

pub(crate) async fn fetch_hashes(
    conn: &mut AnyConnection,
    ids: &[u64],
) -> Result<Vec<(u64, Hash)>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut found = Vec::with_capacity(ids.len());
    let sqlite = is_sqlite(conn);
    // Well under the databases' limits on bound parameters.
    for chunk in ids.chunks(10_000) {
        let chunk = chunk
            .iter()
            .map(|&id| to_i64(id).map(Param::Int))
            .collect::<Result<Vec<_>>>()?;
        let mut statement = Statement::new(sqlite);
        statement
            .sql("select id, hash from merkle_hash where id in (")
            .list(chunk)
            .sql(")");
        for row in statement.query().fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get(0)?;
            let hash: String = row.try_get(1)?;
            found.push((from_i64(id)?, parse_hex_hash(&hash)?));
        }
    }
    Ok(found)
}

pub(crate) fn parse_hex_hash(text: &str) -> Result<Hash> {
    let bytes =
        hex::decode(text).map_err(|e| RegistryError::Corrupt(format!("stored hash: {e}")))?;
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| RegistryError::Corrupt("stored hash is not 32 bytes".into()))?;
    Ok(Hash(array))
}

/// A value bound in a [`Statement`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// Inserts rows of `width` values each (`params`, row after row) with
/// `head` (`insert into t (a, b)`) in as few statements as the databases'
/// parameter limits allow: one round trip to the database for what would
/// otherwise be one per row.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    width: usize,
    params: &[Param<'_>],
) -> Result<()> {
    // Under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
    const MAX_PARAMS: usize = 30_000;
    if width == 0 {
        return Ok(());
    }
    let sqlite = is_sqlite(conn);
    for chunk in params.chunks(MAX_PARAMS / width * width) {
        let mut statement = Statement::new(sqlite);
        statement.sql(head).sql(" values ");
        for (i, row) in chunk.chunks(width).enumerate() {
            if i > 0 {
                statement.sql(", ");
            }
            statement.sql("(").list(row.iter().copied()).sql(")");
        }
        statement.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether `conn` is an SQLite connection.
pub(crate) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// SQL text and the values bound to it, in order. On SQLite the parameters
/// are nameless (`?`): to place each value sqlx asks SQLite for the
/// parameter's name, which SQLite finds by walking the statement's list of
/// names, so with `$N` parameters binding takes time quadratic in their
/// number (it was half the CPU of nodes applying batches of 1,000 claims);
/// nameless parameters have no such list. PostgreSQL takes `$N`. A list of
/// values used twice in the text is bound twice.
pub(crate) struct Statement<'a> {
    sqlite: bool,
    sql: String,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sqlite: bool) -> Self {
        Self {
            sqlite,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub(crate) fn sql(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Appends a placeholder for each value, separated by commas.
    pub(crate) fn list(&mut self, values: impl IntoIterator<Item = Param<'a>>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.params.push(value);
            if self.sqlite {
                self.sql.push('?');
            } else {
                self.sql.push_str(&format!("${}", self.params.len()));
            }
        }
        self
    }

    /// The query, with every value bound.
    pub(crate) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for param in &self.params {
            query = match *param {
                Param::Int(n) => query.bind(n),
                Param::Text(text) => query.bind(text),
            };
        }
        query
    }
}

/// Positions are u64 in the API and bigint in SQL; 2^63 leaves is out of reach.
pub(crate) fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| RegistryError::OutOfRange(format!("{n} is too large")))
}

pub(crate) fn from_i64(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| RegistryError::Corrupt(format!("negative position {n}")))
}

#[cfg(test)]
pub(crate) mod tests;
