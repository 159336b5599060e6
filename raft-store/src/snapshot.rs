//! Snapshot files: built from the registry a page at a time, kept on disk,
//! streamed to peers in chunks and installed a leaf at a time, so that no
//! step holds the ledger in memory.
//!
//! The format is JSON lines: the first line is the snapshot's metadata (the
//! last log id and membership it covers), each further line one
//! [`SnapshotLeaf`], in leaf order. JSON escapes newlines inside strings,
//! so a line is always one record.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use registry::{Registry, SNAPSHOT_PAGE, SnapshotLeaf};

use crate::types::SnapshotMeta;

/// Bytes per chunk when a snapshot is sent to a peer.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// The longest first line accepted: membership metadata is small.
const MAX_META_LINE: u64 = 1024 * 1024;

/// A snapshot on disk: an open file, so that a newer snapshot replacing
/// the path while this one is being sent does not disturb it.
#[derive(Debug)]
pub struct SnapshotFile {
    file: File,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A temporary name next to `path` used by nothing else, ever.
pub(crate) fn unique_tmp(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_extension(format!("{}.{n}.tmp", std::process::id()))
}

/// Makes `tmp` durable and renames it to `path`, durably: a crash leaves
/// the old file or the new one, never a torn one.
fn commit_file(file: &File, tmp: &Path, path: &Path) -> io::Result<()> {
    // The rename must not become visible before the data is on disk, or a
    // crash could leave an empty snapshot in its place.
    file.sync_all()?;
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        // Persist the rename itself.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl SnapshotFile {
    /// Opens the snapshot at `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
        })
    }

    /// The metadata line.
    pub(crate) fn read_meta(&mut self) -> io::Result<SnapshotMeta> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut line = String::new();
        BufReader::new((&mut self.file).take(MAX_META_LINE)).read_line(&mut line)?;
        serde_json::from_str(&line).map_err(|e| invalid(format!("snapshot metadata: {e}")))
    }

    /// The leaves, in order, read one line at a time.
    pub(crate) fn leaves(
        &mut self,
    ) -> io::Result<impl Iterator<Item = io::Result<SnapshotLeaf>> + '_> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut lines = BufReader::new(&mut self.file).lines();
        // The metadata line.
        lines.next().transpose()?;
        Ok(lines.map(|line| {
            serde_json::from_str(&line?).map_err(|e| invalid(format!("snapshot leaf: {e}")))
        }))
    }

    /// Reads the next chunk to send from `offset`; shorter than
    /// [`CHUNK_BYTES`] only at the end.
    pub(crate) fn chunk(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        (&mut self.file)
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Copies this snapshot to `path`, durably, as the current snapshot.
    pub(crate) fn copy_to(&mut self, path: &Path) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        let tmp = unique_tmp(path);
        let mut out = File::create(&tmp)?;
        io::copy(&mut self.file, &mut out)?;
        commit_file(&out, &tmp, path)
    }
}

/// Writes a snapshot of `registry`'s current state to `path` and opens it.
/// `meta_of` turns the registry's Raft marks into the snapshot metadata.
pub(crate) async fn build(
    registry: &Registry,
    path: &Path,
    meta_of: impl FnOnce(&registry::RaftMarks) -> io::Result<SnapshotMeta>,
) -> io::Result<(SnapshotMeta, SnapshotFile)> {
    let (marks, size) = registry.snapshot_marks().await.map_err(io::Error::other)?;
    let meta = meta_of(&marks)?;
    let tmp = unique_tmp(path);
    let file = File::create(&tmp)?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer(&mut out, &meta).map_err(io::Error::other)?;
    out.write_all(b"\n")?;
    let mut start = 0;
    while start < size {
        let end = (start + SNAPSHOT_PAGE).min(size);
        for leaf in registry
            .snapshot_leaves(start, end)
            .await
            .map_err(io::Error::other)?
        {
            serde_json::to_writer(&mut out, &leaf).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        start = end;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    commit_file(&file, &tmp, path)?;
    Ok((meta, SnapshotFile::open(path)?))
}

/// Checks that every leaf of `file` decodes, and that its metadata line is
/// `meta`, without holding more than one leaf in memory.
pub(crate) fn check(file: &mut SnapshotFile, meta: &SnapshotMeta) -> io::Result<()> {
    if file.read_meta()? != *meta {
        return Err(invalid(
            "the snapshot's metadata line differs from its metadata".into(),
        ));
    }
    for (index, leaf) in file.leaves()?.enumerate() {
        let leaf = leaf?;
        registry::LedgerEntry::from_leaf(&leaf.leaf)
            .map_err(|e| invalid(format!("leaf {index}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks cover the file exactly, and the leaves read back as written.
    #[test]
    fn chunks_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.jsonl");
        let meta = SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
        };
        let big = "x".repeat(CHUNK_BYTES / 2);
        let mut text = serde_json::to_string(&meta).unwrap() + "\n";
        for n in 0..3 {
            let leaf = SnapshotLeaf {
                leaf: format!("{{\"n\":{n},\"pad\":\"{big}\",\"nl\":\"a\\nb\"}}"),
                prints: (n == 1).then(|| "{}".to_owned()),
                token_sha256: None,
            };
            text += &(serde_json::to_string(&leaf).unwrap() + "\n");
        }
        std::fs::write(&path, &text).unwrap();
        let mut file = SnapshotFile::open(&path).unwrap();
        assert_eq!(file.read_meta().unwrap(), meta);
        let leaves: Vec<SnapshotLeaf> = file.leaves().unwrap().map(Result::unwrap).collect();
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves[1].prints.as_deref(), Some("{}"));
        let mut sent = Vec::new();
        loop {
            let chunk = file.chunk(sent.len() as u64).unwrap();
            let last = chunk.len() < CHUNK_BYTES;
            sent.extend(chunk);
            if last {
                break;
            }
        }
        assert_eq!(sent, text.as_bytes());
    }
}
