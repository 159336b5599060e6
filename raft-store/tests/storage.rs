//! openraft's storage conformance suite against the real log store (raft-log
//! on disk) and the real state machine (the registry in SQLite, and in
//! PostgreSQL when `DATABASE_URL` is set).

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use raft_store::TypeConfig;
use raft_store::log_store::LogStore;
use raft_store::state_machine::StateMachine;
use registry::Registry;
use tempfile::TempDir;

struct SqliteBuilder;

fn storage_err(e: impl std::error::Error + 'static) -> StorageError<TypeConfig> {
    StorageError::write(TypeConfig::err_from_error(&e))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SqliteBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().map_err(storage_err)?;
        let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
        let registry = Registry::connect(&url).await.map_err(storage_err)?;
        let log = LogStore::open(&dir.path().join("log")).map_err(storage_err)?;
        let sm = StateMachine::new(registry, dir.path().join("snapshot.json"));
        Ok((dir, log, sm))
    }
}

/// The whole openraft storage suite passes on raft-log + SQLite.
#[test]
fn conformance_sqlite() {
    TypeConfig::run(async {
        Suite::test_all(SqliteBuilder).await.unwrap();
    });
}

/// Guard that drops the per-build PostgreSQL database.
struct PgGuard {
    _dir: TempDir,
    admin_url: String,
    name: String,
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the suite's runtime; do the cleanup on a thread
        // with its own so it does not block or nest runtimes.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(pool) = sqlx::AnyPool::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("drop database if exists {name} with (force)"))
                                .execute(&pool)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

struct PgBuilder {
    admin_url: String,
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, PgGuard> for PgBuilder {
    async fn build(&self) -> Result<(PgGuard, LogStore, StateMachine), StorageError<TypeConfig>> {
        sqlx::any::install_default_drivers();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("provreg_conformance_{}_{n}", std::process::id());
        let admin = sqlx::AnyPool::connect(&self.admin_url)
            .await
            .map_err(storage_err)?;
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await
            .map_err(storage_err)?;
        admin.close().await;
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        let registry = Registry::connect(&format!("{base}/{name}"))
            .await
            .map_err(storage_err)?;
        let dir = TempDir::new().map_err(storage_err)?;
        let log = LogStore::open(&dir.path().join("log")).map_err(storage_err)?;
        let sm = StateMachine::new(registry, dir.path().join("snapshot.json"));
        let guard = PgGuard {
            _dir: dir,
            admin_url: self.admin_url.clone(),
            name,
        };
        Ok((guard, log, sm))
    }
}

/// The whole suite passes on raft-log + PostgreSQL.
#[test]
fn conformance_postgres() {
    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping PostgreSQL conformance: DATABASE_URL is not set");
        return;
    };
    TypeConfig::run(async {
        Suite::test_all(PgBuilder { admin_url }).await.unwrap();
    });
}
