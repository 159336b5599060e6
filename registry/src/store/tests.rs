//! Store tests, run against SQLite always and against PostgreSQL when
//! `DATABASE_URL` is set.

use media_fingerprint::MediaKind;

use super::*;
use crate::entry::{
    ApplyOutcome, ContentRegistration, EntryBody, IsccCodes, LedgerEntry, Prints, Rejection,
};
use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::{Metadata, checkpoint::TreeHead};

/// A database that lives as long as the test.
pub(crate) enum TestDb {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub(crate) async fn drop_db(self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let pool = AnyPool::connect(&admin_url).await.unwrap();
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// Every backend available here: SQLite always, PostgreSQL if configured.
pub(crate) async fn backends() -> Vec<(Registry, TestDb)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
    let mut out = vec![(
        Registry::connect(&url).await.unwrap(),
        TestDb::Sqlite { _dir: dir },
    )];
    match std::env::var("DATABASE_URL") {
        Ok(admin_url) => {
            sqlx::any::install_default_drivers();
            let name = format!(
                "provreg_test_{}",
                std::process::id() as u64 * 1000
                    + COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            let pool = AnyPool::connect(&admin_url).await.unwrap();
            sqlx::query(&format!("create database {name}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let url = replace_db_name(&admin_url, &name);
            out.push((
                Registry::connect(&url).await.unwrap(),
                TestDb::Postgres { admin_url, name },
            ));
        }
        Err(_) => eprintln!("skipping PostgreSQL: DATABASE_URL is not set"),
    }
    out
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rsplit_once('/') {
        Some((prefix, _db)) if prefix.contains("//") && prefix.len() > "postgres://".len() => {
            prefix
        }
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub(crate) fn registration(n: u32) -> LedgerEntry {
    let mut hasher = media_fingerprint::StreamHasher::new();
    hasher.update(format!("content number {n}").as_bytes());
    let exact = hasher.finish().unwrap();
    LedgerEntry::new(EntryBody::ContentRegistered(ContentRegistration {
        content_id: format!("0192f0c1-0000-7000-8000-{n:012x}"),
        registered_at: "2026-11-21T12:00:00Z".into(),
        registrant: "operator".into(),
        media_kind: MediaKind::Other,
        media_type: None,
        size: u64::from(n),
        sha256: format!("{n:064x}"),
        iscc: IsccCodes {
            code: None,
            meta: None,
            instance: exact.instance_code,
            data: exact.data_code,
            image: None,
            audio: None,
            video: None,
        },
        missing_fingerprints: vec![],
        metadata: Metadata::default(),
        prints_sha256: None,
        claim: None,
    }))
}

pub(crate) async fn apply_all(reg: &Registry, entries: &[LedgerEntry]) -> Vec<ApplyOutcome> {
    let mut tx = reg.begin_apply().await.unwrap();
    let mut out = vec![];
    for e in entries {
        out.push(tx.apply(e, None).await.unwrap());
    }
    tx.commit(&RaftMarks {
        last_applied: Some(format!("applied-{}", entries.len())),
        last_membership: None,
    })
    .await
    .unwrap();
    out
}

/// Appends build the tree the RFC defines: every proof the store serves
/// verifies against the root it serves, at every size.
#[tokio::test]
async fn proofs_from_the_store_verify() {
    for (reg, db) in backends().await {
        let entries: Vec<LedgerEntry> = (1..=11).map(registration).collect();
        // Two batches, to cross a transaction boundary.
        apply_all(&reg, &entries[..4]).await;
        apply_all(&reg, &entries[4..]).await;
        assert_eq!(reg.tree_size().await.unwrap(), 11);

        for size in 1..=11u64 {
            let head = reg.tree_head(Some(size)).await.unwrap();
            for index in 0..size {
                let (root, proof) = reg.inclusion_proof(index, size).await.unwrap();
                assert_eq!(root, head.root);
                let stored = reg.entry(index).await.unwrap().unwrap();
                verify_inclusion(leaf_hash(stored.leaf.as_bytes()), index, size, &proof, root)
                    .unwrap();
            }
            for from in 1..=size {
                let (root, proof) = reg.consistency_proof(from, size).await.unwrap();
                let old = reg.tree_head(Some(from)).await.unwrap();
                verify_consistency(from, size, &proof, old.root, root).unwrap();
            }
        }
        db.drop_db().await;
    }
}

/// Duplicate bytes, a reused id and an unknown parent are rejected without
/// touching the ledger; a known parent is accepted.
#[tokio::test]
async fn business_rules_reject_without_change() {
    for (reg, db) in backends().await {
        apply_all(&reg, &[registration(1)]).await;
        let before = reg.tree_head(None).await.unwrap();

        let mut dup = registration(2);
        let EntryBody::ContentRegistered(r) = &mut dup.body else {
            unreachable!()
        };
        r.sha256 = format!("{:064x}", 1);
        let mut taken = registration(3);
        let EntryBody::ContentRegistered(r) = &mut taken.body else {
            unreachable!()
        };
        r.content_id = format!("0192f0c1-0000-7000-8000-{:012x}", 1);
        let mut orphan = registration(4);
        let EntryBody::ContentRegistered(r) = &mut orphan.body else {
            unreachable!()
        };
        r.metadata.derived_from = vec!["0192f0c1-0000-7000-8000-0000000000ff".into()];

        let outcomes = apply_all(&reg, &[dup, taken, orphan]).await;
        let first = "0192f0c1-0000-7000-8000-000000000001".to_owned();
        assert_eq!(
            outcomes,
            vec![
                ApplyOutcome::Rejected(Rejection::DuplicateContent {
                    content_id: first.clone()
                }),
                ApplyOutcome::Rejected(Rejection::ContentIdTaken {
                    content_id: first.clone()
                }),
                ApplyOutcome::Rejected(Rejection::UnknownDerivedFrom {
                    content_id: "0192f0c1-0000-7000-8000-0000000000ff".into()
                }),
            ]
        );
        assert_eq!(reg.tree_head(None).await.unwrap(), before);

        let mut child = registration(5);
        let EntryBody::ContentRegistered(r) = &mut child.body else {
            unreachable!()
        };
        r.metadata.derived_from = vec![first.clone()];
        assert_eq!(
            apply_all(&reg, &[child]).await,
            vec![ApplyOutcome::Appended {
                index: 1,
                tree_size: 2
            }]
        );
        db.drop_db().await;
    }
}

/// A batch that is not committed leaves nothing behind, marks included.
#[tokio::test]
async fn uncommitted_batch_is_invisible() {
    for (reg, db) in backends().await {
        apply_all(&reg, &[registration(1)]).await;
        let marks = reg.raft_marks().await.unwrap();
        {
            let mut tx = reg.begin_apply().await.unwrap();
            tx.apply(&registration(2), None).await.unwrap();
            // Dropped without commit.
        }
        assert_eq!(reg.tree_size().await.unwrap(), 1);
        assert_eq!(reg.raft_marks().await.unwrap(), marks);
        assert!(
            reg.content_by_sha256(&format!("{:064x}", 2))
                .await
                .unwrap()
                .is_none()
        );
        db.drop_db().await;
    }
}

/// Content reads find a registration by id and by hash.
#[tokio::test]
async fn content_lookups() {
    for (reg, db) in backends().await {
        apply_all(&reg, &[registration(1), registration(2)]).await;
        let by_id = reg
            .content("0192f0c1-0000-7000-8000-000000000002")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_id.ledger_index, 1);
        let by_hash = reg
            .content_by_sha256(&format!("{:064x}", 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_hash, by_id);
        assert!(
            reg.content("0192f0c1-0000-7000-8000-0000000000aa")
                .await
                .unwrap()
                .is_none()
        );
        db.drop_db().await;
    }
}

/// Out-of-range proof requests are errors, not panics or empty proofs.
#[tokio::test]
async fn proof_ranges_are_checked() {
    for (reg, db) in backends().await {
        apply_all(&reg, &[registration(1), registration(2)]).await;
        assert!(matches!(
            reg.inclusion_proof(2, 2).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert!(matches!(
            reg.inclusion_proof(0, 3).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert!(matches!(
            reg.consistency_proof(0, 2).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert!(matches!(
            reg.consistency_proof(2, 1).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert!(matches!(
            reg.consistency_proof(1, 3).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert!(matches!(
            reg.tree_head(Some(3)).await,
            Err(RegistryError::OutOfRange(_))
        ));
        assert_eq!(
            reg.tree_head(Some(0)).await.unwrap(),
            TreeHead {
                size: 0,
                root: crate::merkle::EMPTY_ROOT
            }
        );
        db.drop_db().await;
    }
}

/// The marks and every leaf of `reg`, read page by page as raft-store does.
pub(crate) async fn read_snapshot(reg: &Registry) -> (RaftMarks, Vec<super::SnapshotLeaf>) {
    let (marks, size) = reg.snapshot_marks().await.unwrap();
    let mut leaves = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + 3).min(size);
        leaves.extend(reg.snapshot_leaves(start, end).await.unwrap());
        start = end;
    }
    (marks, leaves)
}

/// Installs a snapshot read by [`read_snapshot`] into `reg`.
pub(crate) async fn install(
    reg: &Registry,
    (marks, leaves): &(RaftMarks, Vec<super::SnapshotLeaf>),
) {
    let mut tx = reg.begin_install().await.unwrap();
    for leaf in leaves {
        tx.append_snapshot_leaf(leaf).await.unwrap();
    }
    tx.commit(marks).await.unwrap();
}

/// A snapshot installed elsewhere reproduces the same tree, marks and lookups.
#[tokio::test]
async fn snapshot_round_trip() {
    let mut all = backends().await;
    let (src, src_db) = all.remove(0);
    apply_all(&src, &(1..=5).map(registration).collect::<Vec<_>>()).await;
    let snap = read_snapshot(&src).await;
    assert_eq!(snap.1.len(), 5);
    let mut targets = backends().await;
    for (dst, db) in targets.drain(..) {
        // Something to overwrite.
        apply_all(&dst, &[registration(9)]).await;
        install(&dst, &snap).await;
        assert_eq!(
            dst.tree_head(None).await.unwrap(),
            src.tree_head(None).await.unwrap()
        );
        assert_eq!(
            dst.raft_marks().await.unwrap(),
            src.raft_marks().await.unwrap()
        );
        assert!(
            dst.content_by_sha256(&format!("{:064x}", 9))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            dst.content_by_sha256(&format!("{:064x}", 3))
                .await
                .unwrap()
                .is_some()
        );
        db.drop_db().await;
    }
    for (_, db) in all {
        db.drop_db().await;
    }
    src_db.drop_db().await;
}

/// Data survives closing and reopening the database.
#[tokio::test]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
    let reg = Registry::connect(&url).await.unwrap();
    apply_all(&reg, &[registration(1), registration(2), registration(3)]).await;
    let head = reg.tree_head(None).await.unwrap();
    reg.close().await;
    let reg = Registry::connect(&url).await.unwrap();
    assert_eq!(reg.tree_head(None).await.unwrap(), head);
    assert_eq!(
        reg.raft_marks().await.unwrap().last_applied.as_deref(),
        Some("applied-3")
    );
}

/// The state machine's commits leave the WAL to the checkpointing
/// connection, which copies all of it back into the database; the data
/// is the same after.
#[tokio::test]
async fn checkpoints_run_apart_from_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
    let reg = Registry::connect(&url).await.unwrap();
    // Commits of one registration each, until the WAL holds more than the
    // 8,192 pages at which the writer once copied it back itself.
    let mut n = 0;
    let frames = loop {
        let chunk: Vec<LedgerEntry> = (n + 1..=n + 200).map(registration).collect();
        for entry in &chunk {
            apply_all(&reg, std::slice::from_ref(entry)).await;
        }
        n += 200;
        let wal = dir.path().join("registry.db-wal");
        let frames = std::fs::metadata(&wal).map_or(0, |m| m.len()) / 4096;
        if frames > 8192 || n >= 4000 {
            break frames;
        }
    };
    assert!(frames > 8192, "{n} commits left {frames} frames in the WAL");
    let head = reg.tree_head(None).await.unwrap();
    let (frames, copied) = reg.checkpoint_wal().await.unwrap().unwrap();
    assert!(frames > 8192, "the WAL holds {frames} frames");
    assert_eq!(copied, frames, "a quiet database is copied whole");
    assert_eq!(reg.tree_head(None).await.unwrap(), head);
    reg.close().await;
    let reg = Registry::connect(&url).await.unwrap();
    assert_eq!(reg.tree_head(None).await.unwrap(), head);
}

/// A registration whose Image-Code has the 64-bit body `code`.
fn with_image_code(n: u32, code: u64) -> LedgerEntry {
    let mut entry = registration(n);
    let EntryBody::ContentRegistered(r) = &mut entry.body else {
        unreachable!()
    };
    let unit = iscc_lib::encode_component(2, 1, 0, 64, &code.to_be_bytes()).unwrap();
    r.iscc.image = Some(format!("ISCC:{}", unit.trim_start_matches("ISCC:")));
    entry
}

/// The banded index returns exactly what a scan would: every registered
/// code within the indexed distance, with its distance, best first.
#[tokio::test]
async fn code_index_equals_a_scan() {
    for (reg, db) in backends().await {
        // A deterministic spread of codes, many of them near a few centres.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let centres: Vec<u64> = (0..4).map(|_| next()).collect();
        let mut codes = vec![];
        for i in 0..240u32 {
            let centre = centres[i as usize % centres.len()];
            let flips = i % 14;
            let mut code = centre;
            for _ in 0..flips {
                code ^= 1 << (next() % 64);
            }
            codes.push(code);
        }
        let entries: Vec<LedgerEntry> = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| with_image_code(i as u32 + 1, c))
            .collect();
        apply_all(&reg, &entries).await;

        for (q, &query) in centres.iter().chain(&codes[..20]).enumerate() {
            let got = reg
                .codes_within(CodeKind::Image, query, MAX_INDEXED_DISTANCE)
                .await
                .unwrap();
            let mut want: Vec<(String, u32)> = codes
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    (
                        format!("0192f0c1-0000-7000-8000-{:012x}", i + 1),
                        (c ^ query).count_ones(),
                    )
                })
                .filter(|(_, d)| *d <= MAX_INDEXED_DISTANCE)
                .collect();
            want.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let got: Vec<(String, u32)> = got
                .into_iter()
                .map(|m| (m.content_id, m.distance))
                .collect();
            assert_eq!(got, want, "query {q}");
        }
        // Other kinds are separate: no audio codes were registered.
        assert!(
            reg.codes_within(CodeKind::Audio, centres[0], 9)
                .await
                .unwrap()
                .is_empty()
        );
        db.drop_db().await;
    }
}

fn audio_prints(items: Vec<u32>) -> String {
    Prints {
        audio: Some(media_fingerprint::audio::AudioPrint {
            duration_seconds: items.len() as f64 * 0.1238,
            chromaprint: items,
        }),
        video: None,
        image_crops: vec![],
    }
    .to_json()
    .unwrap()
}

fn with_prints(n: u32, json: &str) -> LedgerEntry {
    let mut entry = registration(n);
    let EntryBody::ContentRegistered(r) = &mut entry.body else {
        unreachable!()
    };
    r.prints_sha256 = Some(Prints::digest(json));
    entry
}

/// Prints are stored beside the leaf they belong to, their sampled audio
/// items are indexed, and prints that do not match the leaf's commitment
/// are rejected without a trace.
#[tokio::test]
async fn prints_are_stored_indexed_and_checked() {
    for (reg, db) in backends().await {
        let items: Vec<u32> = (0..400u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        let json = audio_prints(items.clone());
        let mut tx = reg.begin_apply().await.unwrap();
        let ok = tx.apply(&with_prints(1, &json), Some(&json)).await.unwrap();
        assert!(matches!(ok, ApplyOutcome::Appended { .. }));
        let other = audio_prints(vec![1, 2, 3]);
        let bad = tx
            .apply(&with_prints(2, &json), Some(&other))
            .await
            .unwrap();
        assert!(matches!(
            bad,
            ApplyOutcome::Rejected(Rejection::PrintsMismatch { .. })
        ));
        let missing = tx.apply(&with_prints(3, &json), None).await.unwrap();
        assert!(matches!(
            missing,
            ApplyOutcome::Rejected(Rejection::PrintsMismatch { .. })
        ));
        tx.commit(&RaftMarks::default()).await.unwrap();

        let id = "0192f0c1-0000-7000-8000-000000000001";
        let stored = reg.prints(id).await.unwrap().unwrap();
        assert_eq!(stored.audio.unwrap().chromaprint, items);
        assert!(
            reg.prints("0192f0c1-0000-7000-8000-000000000002")
                .await
                .unwrap()
                .is_none()
        );

        // An excerpt's sampled items vote for the source.
        let votes = reg.audio_item_votes(&items[100..200], 10).await.unwrap();
        let expected = items[100..200].iter().filter(|&&i| is_sampled(i)).count() as u32;
        assert_eq!(votes, vec![(id.to_owned(), expected)]);
        assert!(expected > 0);

        // Snapshots carry prints, and installing one restores the indexes.
        let snap = read_snapshot(&reg).await;
        assert_eq!(snap.1.iter().filter(|l| l.prints.is_some()).count(), 1);
        let (dst, dst_db) = backends().await.remove(0);
        install(&dst, &snap).await;
        assert_eq!(dst.prints(id).await.unwrap(), reg.prints(id).await.unwrap());
        assert_eq!(
            dst.audio_item_votes(&items[100..200], 10).await.unwrap(),
            votes
        );
        dst_db.drop_db().await;
        db.drop_db().await;
    }
}

pub(crate) fn node_record(id: u64, key: &ring::signature::Ed25519KeyPair) -> crate::NodeRecord {
    use base64::Engine;
    use ring::signature::KeyPair;
    crate::NodeRecord {
        node_id: id,
        address: format!("http://node{id}.example:7000"),
        node_key: base64::prelude::BASE64_STANDARD.encode(key.public_key().as_ref()),
        checkpoint_key: format!("provreg.example/log+0000000{id}+AAAA"),
        feature_level: crate::FEATURE_LEVEL,
    }
}

fn keypair() -> ring::signature::Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn approval(
    cluster_id: &str,
    from: &[u64],
    to: &[u64],
    approver: u64,
    key: &ring::signature::Ed25519KeyPair,
) -> LedgerEntry {
    use base64::Engine;
    let mut approval = crate::Approval {
        cluster_id: cluster_id.into(),
        from_voters: from.to_vec(),
        to_voters: to.to_vec(),
        approver,
        approved_at: "2026-12-04T10:00:01Z".into(),
        signature: String::new(),
    };
    approval.signature =
        base64::prelude::BASE64_STANDARD.encode(key.sign(approval.signed_message().as_bytes()));
    LedgerEntry::new(EntryBody::MembershipApproved(crate::MembershipApproved {
        recorded_at: "2026-12-04T10:00:02Z".into(),
        approval,
    }))
}

/// The cluster's entries build its records: formation only as the first
/// leaf, node ids never reused (not even after removal), approvals counted
/// only when signed by a current member's recorded key.
#[tokio::test]
async fn cluster_entries_are_checked_and_recorded() {
    for (reg, db) in backends().await {
        let (k1, k2, stranger) = (keypair(), keypair(), keypair());
        let formed = LedgerEntry::new(EntryBody::ClusterFormed(crate::ClusterFormed {
            formed_at: "2026-12-04T10:00:00Z".into(),
            cluster_id: "c-1".into(),
            origin: "provreg.example/log".into(),
            founder: node_record(1, &k1),
        }));
        let added = LedgerEntry::new(EntryBody::NodeAdded(crate::NodeAdded {
            added_at: "2026-12-04T10:00:00Z".into(),
            node: node_record(2, &k2),
        }));
        let removed = LedgerEntry::new(EntryBody::NodeRemoved(crate::NodeRemoved {
            removed_at: "2026-12-04T10:00:03Z".into(),
            node_id: 2,
        }));
        let outcomes = apply_all(
            &reg,
            &[
                formed.clone(),
                formed,
                added.clone(),
                added.clone(),
                approval("c-1", &[1, 2], &[1, 2, 3], 2, &k2),
                approval("c-1", &[1, 2], &[1, 2, 3], 2, &stranger),
                approval("c-2", &[1, 2], &[1, 2, 3], 1, &k1),
                approval("c-1", &[1, 2], &[1, 2, 3], 9, &stranger),
                removed.clone(),
                removed,
                LedgerEntry::new(EntryBody::NodeAdded(crate::NodeAdded {
                    added_at: "2026-12-04T10:00:04Z".into(),
                    node: node_record(2, &k2),
                })),
            ],
        )
        .await;
        assert!(matches!(
            outcomes[0],
            ApplyOutcome::Appended { index: 0, .. }
        ));
        assert_eq!(
            outcomes[1],
            ApplyOutcome::Rejected(Rejection::ClusterAlreadyFormed)
        );
        assert!(matches!(outcomes[2], ApplyOutcome::Appended { .. }));
        assert_eq!(
            outcomes[3],
            ApplyOutcome::Rejected(Rejection::NodeIdReused { node_id: 2 })
        );
        assert!(matches!(outcomes[4], ApplyOutcome::Appended { .. }));
        for bad in &outcomes[5..7] {
            assert!(
                matches!(
                    bad,
                    ApplyOutcome::Rejected(Rejection::InvalidApproval { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            outcomes[7],
            ApplyOutcome::Rejected(Rejection::UnknownNode { node_id: 9 })
        );
        assert!(matches!(outcomes[8], ApplyOutcome::Appended { .. }));
        assert_eq!(
            outcomes[9],
            ApplyOutcome::Rejected(Rejection::UnknownNode { node_id: 2 })
        );
        assert_eq!(
            outcomes[10],
            ApplyOutcome::Rejected(Rejection::NodeIdReused { node_id: 2 })
        );

        assert_eq!(
            reg.approvers(&[2, 1], &[3, 2, 1], "2026-12-04T00:00:00Z")
                .await
                .unwrap(),
            vec![2]
        );
        assert!(
            reg.approvers(&[1, 2], &[1, 2, 3], "2026-12-05T00:00:00Z")
                .await
                .unwrap()
                .is_empty()
        );
        let nodes = reg.recorded_nodes().await.unwrap();
        assert_eq!(nodes.len(), 2);
        assert!(!nodes[0].removed && nodes[1].removed);
        assert_eq!(reg.tree_size().await.unwrap(), 4);
        db.drop_db().await;
    }
}

/// Time in the ledger never goes backwards: an entry stamped before the
/// last leaf is rejected, one stamped at the same second is taken.
#[tokio::test]
async fn timestamps_never_go_backwards() {
    for (reg, db) in backends().await {
        let mut entries: Vec<LedgerEntry> = (1..=3).map(registration).collect();
        for (entry, at) in entries.iter_mut().zip([
            "2026-12-04T10:00:05Z",
            "2026-12-04T10:00:04Z",
            "2026-12-04T10:00:05Z",
        ]) {
            let EntryBody::ContentRegistered(r) = &mut entry.body else {
                unreachable!()
            };
            r.registered_at = at.into();
        }
        let outcomes = apply_all(&reg, &entries).await;
        assert!(matches!(outcomes[0], ApplyOutcome::Appended { .. }));
        assert!(matches!(
            outcomes[1],
            ApplyOutcome::Rejected(Rejection::TimestampRegressed { .. })
        ));
        assert!(matches!(outcomes[2], ApplyOutcome::Appended { .. }));
        // A new transaction reads the bound back from the last leaf.
        let mut tx = reg.begin_apply().await.unwrap();
        assert_eq!(tx.latest_timestamp(), Some("2026-12-04T10:00:05Z"));
        let mut late = registration(4);
        let EntryBody::ContentRegistered(r) = &mut late.body else {
            unreachable!()
        };
        r.registered_at = "2026-12-04T09:00:00Z".into();
        assert!(matches!(
            tx.apply(&late, None).await.unwrap(),
            ApplyOutcome::Rejected(Rejection::TimestampRegressed { .. })
        ));
        drop(tx);
        db.drop_db().await;
    }
}

fn claim_of(n: u32, content_id: &str) -> LedgerEntry {
    let EntryBody::ContentRegistered(reg) = registration(n).body else {
        unreachable!()
    };
    LedgerEntry::new(EntryBody::ContentClaimed(crate::ContentClaim {
        content_id: content_id.into(),
        claimed_at: "2026-11-21T12:00:00Z".into(),
        registrant: "operator".into(),
        fingerprinted_by: crate::FingerprintedBy::Registrant,
        sha256: reg.sha256,
        size: reg.size,
        media_type: Some("audio/flac".into()),
        iscc: crate::ClaimedIscc {
            data: Some(reg.iscc.data),
            ..Default::default()
        },
        metadata: Metadata::default(),
    }))
}

/// A claim by hash is recorded and indexed for matching, is not a lock on
/// the bytes (an upload of them is registered, naming the claim, and must
/// name it), and is refused for bytes registered or claimed already.
#[tokio::test]
async fn claims_are_recorded_and_confirmed_by_uploads() {
    for (reg, db) in backends().await {
        let claim_id = "0192f0c1-0000-7000-8000-00000000c001";
        let upload = registration(1);
        let mut confirming = upload.clone();
        let EntryBody::ContentRegistered(r) = &mut confirming.body else {
            unreachable!()
        };
        r.claim = Some(claim_id.into());
        let mut bad_code = claim_of(2, "0192f0c1-0000-7000-8000-00000000c002");
        let EntryBody::ContentClaimed(c) = &mut bad_code.body else {
            unreachable!()
        };
        c.iscc.image = Some("ISCC:nonsense".into());
        let outcomes = apply_all(
            &reg,
            &[
                claim_of(1, claim_id),
                claim_of(1, "0192f0c1-0000-7000-8000-00000000c003"),
                upload,
                confirming,
                claim_of(1, "0192f0c1-0000-7000-8000-00000000c004"),
                bad_code,
            ],
        )
        .await;
        assert!(matches!(
            outcomes[0],
            ApplyOutcome::Appended { index: 0, .. }
        ));
        assert_eq!(
            outcomes[1],
            ApplyOutcome::Rejected(Rejection::DuplicateContent {
                content_id: claim_id.into()
            })
        );
        assert_eq!(
            outcomes[2],
            ApplyOutcome::Rejected(Rejection::ClaimNotReferenced {
                claim_id: claim_id.into()
            })
        );
        assert!(matches!(
            outcomes[3],
            ApplyOutcome::Appended { index: 1, .. }
        ));
        assert!(matches!(
            outcomes[4],
            ApplyOutcome::Rejected(Rejection::DuplicateContent { .. })
        ));
        assert!(matches!(
            outcomes[5],
            ApplyOutcome::Rejected(Rejection::InvalidFingerprint { .. })
        ));

        let claim = reg.claim(claim_id).await.unwrap().unwrap();
        assert_eq!(claim.ledger_index, 0);
        let sha = claim.claim.sha256.clone();
        assert_eq!(
            reg.claim_by_sha256(&sha).await.unwrap().unwrap().claim,
            claim.claim
        );
        let data = media_fingerprint::iscc::unit_bits64(claim.claim.iscc.data.as_deref().unwrap())
            .unwrap();
        let found = reg.codes_within(CodeKind::Data, data, 0).await.unwrap();
        let ids: Vec<&str> = found.iter().map(|m| m.content_id.as_str()).collect();
        assert!(ids.contains(&claim_id), "{ids:?}");
        db.drop_db().await;
    }
}

/// A leaf whose apply panics is rejected as ApplyFailed with nothing of it
/// left behind, and the other leaves of its command are applied around it,
/// the same on every backend.
#[tokio::test]
async fn a_panicking_leaf_is_rejected_alone() {
    for (reg, db) in backends().await {
        let mut doomed = registration(2);
        if let EntryBody::ContentRegistered(r) = &mut doomed.body {
            r.metadata.title = Some(super::apply::PANIC_AFTER_APPEND.to_owned());
        }
        let leaves: Vec<String> = [registration(1), doomed, registration(3)]
            .iter()
            .map(|e| e.to_leaf().unwrap())
            .collect();
        let pairs: Vec<(&str, crate::Beside<'_>)> = leaves
            .iter()
            .map(|l| (l.as_str(), crate::Beside::default()))
            .collect();
        let mut tx = reg.begin_apply().await.unwrap();
        let outcomes = tx.apply_leaves(&pairs).await.unwrap();
        tx.commit(&RaftMarks::default()).await.unwrap();
        assert_eq!(
            outcomes[0],
            ApplyOutcome::Appended {
                index: 0,
                tree_size: 1
            }
        );
        assert!(
            matches!(&outcomes[1], ApplyOutcome::Rejected(Rejection::ApplyFailed { detail }) if detail.contains("asked this leaf to panic")),
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes[2],
            ApplyOutcome::Appended {
                index: 1,
                tree_size: 2
            }
        );
        assert_eq!(reg.tree_size().await.unwrap(), 2);
        assert_eq!(reg.entry(1).await.unwrap().unwrap().leaf, leaves[2]);
        // Nothing of the failed leaf stayed: its bytes register later.
        assert_eq!(
            apply_all(&reg, &[registration(2)]).await,
            vec![ApplyOutcome::Appended {
                index: 2,
                tree_size: 3
            }]
        );
        db.drop_db().await;
    }
}

/// The leaves of one command see each other: a second leaf with the bytes,
/// the id or a claim of an earlier leaf of the same command is rejected,
/// and one derived from it is accepted, exactly as if each had been applied
/// in a command of its own.
#[tokio::test]
async fn leaves_of_one_command_see_each_other() {
    for (reg, db) in backends().await {
        let EntryBody::ContentRegistered(first) = registration(1).body else {
            unreachable!()
        };
        let mut same_bytes = first.clone();
        same_bytes.content_id = "0192f0c1-0000-7000-8000-0000000000aa".into();
        let mut same_id = match registration(2).body {
            EntryBody::ContentRegistered(r) => r,
            _ => unreachable!(),
        };
        same_id.content_id = first.content_id.clone();
        let mut derived = match registration(3).body {
            EntryBody::ContentRegistered(r) => r,
            _ => unreachable!(),
        };
        derived.metadata.derived_from = vec![first.content_id.clone()];
        let entries = [
            registration(1),
            LedgerEntry::new(EntryBody::ContentRegistered(same_bytes)),
            LedgerEntry::new(EntryBody::ContentRegistered(same_id)),
            claim_of(1, "0192f0c1-0000-7000-8000-0000000000bb"),
            claim_of(4, "0192f0c1-0000-7000-8000-0000000000cc"),
            claim_of(4, "0192f0c1-0000-7000-8000-0000000000dd"),
            LedgerEntry::new(EntryBody::ContentRegistered(derived)),
        ];
        let leaves: Vec<String> = entries.iter().map(|e| e.to_leaf().unwrap()).collect();
        let pairs: Vec<(&str, crate::Beside<'_>)> = leaves
            .iter()
            .map(|l| (l.as_str(), crate::Beside::default()))
            .collect();
        let mut tx = reg.begin_apply().await.unwrap();
        let together = tx.apply_leaves(&pairs).await.unwrap();
        tx.commit(&RaftMarks::default()).await.unwrap();
        let one_by_one = {
            let (alone, alone_db) = backends().await.remove(0);
            let out = apply_all(&alone, &entries).await;
            alone_db.drop_db().await;
            out
        };
        assert_eq!(together, one_by_one);
        let kinds: Vec<&str> = together
            .iter()
            .map(|o| match o {
                ApplyOutcome::Appended { .. } => "appended",
                ApplyOutcome::Rejected(Rejection::DuplicateContent { .. }) => "duplicate",
                ApplyOutcome::Rejected(Rejection::ContentIdTaken { .. }) => "id taken",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "appended",
                "duplicate",
                "id taken",
                "duplicate",
                "appended",
                "duplicate",
                "appended"
            ]
        );
        assert_eq!(reg.tree_size().await.unwrap(), 3);
        // What the command wrote is what the database serves.
        let size = reg.tree_size().await.unwrap();
        let head = reg.tree_head(Some(size)).await.unwrap();
        for index in 0..size {
            let (root, proof) = reg.inclusion_proof(index, size).await.unwrap();
            assert_eq!(root, head.root);
            let leaf = reg.entry(index).await.unwrap().unwrap().leaf;
            verify_inclusion(leaf_hash(leaf.as_bytes()), index, size, &proof, root).unwrap();
        }
        db.drop_db().await;
    }
}

/// The ids under a SHA-256, for the checks before a proposal: none, a
/// claim, then the claim and the registration that confirms it.
#[tokio::test]
async fn ids_by_sha256_names_registration_and_claim() {
    for (reg, db) in backends().await {
        let EntryBody::ContentRegistered(first) = registration(1).body else {
            unreachable!()
        };
        assert_eq!(
            reg.ids_by_sha256(&first.sha256).await.unwrap(),
            (None, None)
        );
        let claim_id = "0192f0c1-0000-7000-8000-0000000000ee";
        apply_all(&reg, &[claim_of(1, claim_id)]).await;
        assert_eq!(
            reg.ids_by_sha256(&first.sha256).await.unwrap(),
            (None, Some(claim_id.to_owned()))
        );
        let mut confirming = first.clone();
        confirming.claim = Some(claim_id.to_owned());
        let outcomes = apply_all(
            &reg,
            &[LedgerEntry::new(EntryBody::ContentRegistered(confirming))],
        )
        .await;
        assert!(
            matches!(outcomes[0], ApplyOutcome::Appended { .. }),
            "{outcomes:?}"
        );
        assert_eq!(
            reg.ids_by_sha256(&first.sha256).await.unwrap(),
            (Some(first.content_id.clone()), Some(claim_id.to_owned()))
        );
        db.drop_db().await;
    }
}

/// The origin of the rights tests' log.
pub(crate) const LOG: &str = "provreg.example/log";

/// The Ed25519 key pair of test party `seed`.
pub(crate) fn pair(seed: u8) -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

/// A key pair's public key, standard base64.
pub(crate) fn public(pair: &ring::signature::Ed25519KeyPair) -> String {
    use base64::Engine;
    use ring::signature::KeyPair;
    base64::prelude::BASE64_STANDARD.encode(pair.public_key().as_ref())
}

/// The id of test party `n`.
pub(crate) fn party_id(n: u8) -> String {
    format!("0192f0c1-0000-7000-9000-{n:012x}")
}

/// The `party.registered` leaf of test party `n`, keyed by `pair(n)`.
pub(crate) fn party_leaf(n: u8) -> String {
    let mut party = crate::party::PartyRegistered::normalised(
        party_id(n),
        &format!("Party {n}"),
        &["rights_holder".into()],
        &public(&pair(n)),
        crate::party::PartyIdentifiers::default(),
    )
    .unwrap();
    party.registered_at = "2026-11-21T12:00:00Z".into();
    LedgerEntry::new(EntryBody::PartyRegistered(party))
        .to_leaf()
        .unwrap()
}

/// The `cluster.formed` leaf that gives the rights tests' log its origin.
pub(crate) fn formed_leaf() -> String {
    LedgerEntry::new(EntryBody::ClusterFormed(crate::ClusterFormed {
        formed_at: "2026-11-21T12:00:00Z".into(),
        cluster_id: "0192f0c1-0000-7000-8000-0000000000c1".into(),
        origin: LOG.into(),
        founder: node_record(1, &pair(99)),
    }))
    .to_leaf()
    .unwrap()
}

/// `intent` signed by test parties `signers`, each with `pair(n)`.
pub(crate) fn sign(intent: &serde_json::Value, signers: &[u8]) -> crate::SignedIntent {
    use base64::Engine;
    let message = crate::intent::signing_message(intent).unwrap();
    let signatures: Vec<_> = signers
        .iter()
        .map(|&n| {
            serde_json::json!({"party_id": party_id(n), "public_key": public(&pair(n)),
                "signature": base64::prelude::BASE64_STANDARD.encode(pair(n).sign(&message).as_ref())})
        })
        .collect();
    let body = serde_json::json!({"intent": intent, "signatures": signatures});
    crate::SignedIntent::parse(body.to_string().as_bytes()).unwrap()
}

/// Applies `leaves`, each with the token digest beside it, as one command.
pub(crate) async fn apply_leaves(
    reg: &Registry,
    leaves: &[(&str, Option<&str>)],
) -> Vec<ApplyOutcome> {
    let mut tx = reg.begin_apply().await.unwrap();
    let leaves: Vec<_> = leaves
        .iter()
        .map(|&(leaf, token_sha256)| {
            (
                leaf,
                super::Beside {
                    prints: None,
                    token_sha256,
                },
            )
        })
        .collect();
    let outcomes = tx.apply_leaves(&leaves).await.unwrap();
    tx.commit(&RaftMarks {
        last_applied: Some("applied".into()),
        last_membership: None,
    })
    .await
    .unwrap();
    outcomes
}

/// Outcomes in brief: `appended N`, the rule of a refused intent, or the
/// rejection's name.
pub(crate) fn outcome_names(outcomes: &[ApplyOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            ApplyOutcome::Appended { index, .. } => format!("appended {index}"),
            ApplyOutcome::Rejected(Rejection::IntentRefused { rule, .. }) => rule.clone(),
            ApplyOutcome::Rejected(Rejection::MalformedEntry { .. }) => "malformed".into(),
            ApplyOutcome::Rejected(Rejection::LicenceConflict(conflict)) => {
                format!("conflict with {}", conflict.licence_id)
            }
            other => format!("{other:?}"),
        })
        .collect()
}

/// A node's recorded level rises on its own signed claim, and only then:
/// a claim not above the recorded level, signed by another key, or for a
/// node that is not a member is refused, and changes nothing.
#[tokio::test]
async fn node_levels_rise_on_signed_claims() {
    use base64::Engine;
    let key = pair(7);
    let mut founder = node_record(1, &key);
    founder.feature_level = 3;
    let cluster_id = "0192f0c1-0000-7000-8000-0000000000c1";
    let formed = LedgerEntry::new(EntryBody::ClusterFormed(crate::ClusterFormed {
        formed_at: "2026-11-21T12:00:00Z".into(),
        cluster_id: cluster_id.into(),
        origin: LOG.into(),
        founder,
    }));
    let claim = |node_id: u64, level: u32, by: &ring::signature::Ed25519KeyPair| {
        let message = crate::level_claim_message(cluster_id, node_id, level);
        LedgerEntry::new(EntryBody::NodeUpgraded(crate::NodeUpgraded {
            upgraded_at: "2026-11-21T12:00:01Z".into(),
            node_id,
            feature_level: level,
            signature: base64::prelude::BASE64_STANDARD.encode(by.sign(message.as_bytes())),
        }))
    };
    for (reg, db) in backends().await {
        let outcomes = apply_all(
            &reg,
            &[
                formed.clone(),
                claim(1, 3, &key),
                claim(1, 4, &pair(8)),
                claim(2, 4, &key),
                claim(1, 4, &key),
            ],
        )
        .await;
        assert!(
            matches!(
                outcomes[1],
                ApplyOutcome::Rejected(Rejection::InvalidApproval { .. })
            ),
            "{:?}",
            outcomes[1]
        );
        assert!(
            matches!(
                outcomes[2],
                ApplyOutcome::Rejected(Rejection::InvalidApproval { .. })
            ),
            "{:?}",
            outcomes[2]
        );
        assert_eq!(
            outcomes[3],
            ApplyOutcome::Rejected(Rejection::UnknownNode { node_id: 2 })
        );
        assert_eq!(
            outcomes[4],
            ApplyOutcome::Appended {
                index: 1,
                tree_size: 2
            }
        );
        let nodes = reg.recorded_nodes().await.unwrap();
        assert_eq!(nodes[0].record.feature_level, 4);
        db.drop_db().await;
    }
}
