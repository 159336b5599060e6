//! The `provreg` binary: parse the command line, set up logging, run.

use std::io::IsTerminal;

use clap::Parser;
use service::config::{Cli, Command};

/// mimalloc rather than glibc's malloc: a node under write load allocates
/// and frees small buffers on several threads at once (requests, Raft
/// messages, SQLite pages), where glibc's arenas cost about a seventh of
/// its CPU (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // openraft narrates every election at info; its warnings are what
            // an operator needs.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn,chunked_wal=warn,raft_log=warn".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Command::Verify(args)) => {
            println!("{}", service::verify::verify(&args)?);
            Ok(())
        }
        Some(Command::Rebuild(args)) => {
            let registry = registry::Registry::connect(&args.database_url()).await?;
            let leaves = registry.rebuild_projections().await?;
            registry.close().await;
            println!("OK: rebuilt the rights projections from {leaves} leaves");
            Ok(())
        }
        Some(Command::Serve(args)) => service::run(*args, shutdown_signal()).await,
        None => service::run(default_serve_args()?, shutdown_signal()).await,
    }
}

/// `provreg` alone means `provreg serve` with every flag from its default or
/// environment variable.
fn default_serve_args() -> anyhow::Result<service::config::ServeArgs> {
    match Cli::try_parse_from(["provreg", "serve"])?.command {
        Some(Command::Serve(args)) => Ok(*args),
        _ => anyhow::bail!("`provreg serve` did not parse as the serve command"),
    }
}

/// Resolves on Ctrl-C or SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops the server.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
    tracing::info!("Shutting down.");
}
