//! Latency of the similarity index with many registrations.
//!
//! Registers N synthetic items (default 1,000,000) through the real apply
//! path, each with a random 64-bit Image-Code and Data-Code, then times
//! `Registry::codes_within` for queries near registered codes (0 to 7 bits
//! away) and for unrelated codes. Prints p50/p90/p99/max.
//!
//! ```sh
//! cargo bench -p registry --bench match_index              # 1M items, SQLite in a temp dir
//! MATCH_BENCH_ITEMS=100000 cargo bench -p registry --bench match_index
//! ```

use std::time::{Duration, Instant};

use media_fingerprint::MediaKind;
use registry::{
    CodeKind, ContentRegistration, EntryBody, IsccCodes, LedgerEntry, Metadata, RaftMarks, Registry,
};

/// xorshift64: reproducible pseudo-random codes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn unit(main_type: u8, sub_type: u8, code: u64) -> String {
    let unit = iscc_lib::encode_component(main_type, sub_type, 0, 64, &code.to_be_bytes())
        .expect("encodes");
    format!("ISCC:{}", unit.trim_start_matches("ISCC:"))
}

fn entry(n: u64, image: u64, data: u64) -> LedgerEntry {
    LedgerEntry::new(EntryBody::ContentRegistered(ContentRegistration {
        content_id: format!("0192f0c1-0000-7000-8000-{n:012x}"),
        registered_at: "2026-11-21T12:00:00Z".into(),
        registrant: "bench".into(),
        media_kind: MediaKind::Image,
        media_type: Some("image/jpeg".into()),
        size: 1,
        sha256: format!("{n:064x}"),
        iscc: IsccCodes {
            code: None,
            meta: None,
            instance: unit(4, 0, n),
            data: unit(3, 0, data),
            image: Some(unit(2, 1, image)),
            audio: None,
            video: None,
        },
        missing_fingerprints: vec![],
        metadata: Metadata::default(),
        prints_sha256: None,
        claim: None,
    }))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let items: u64 = std::env::var("MATCH_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("MATCH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/registry.db?mode=rwc", dir.path().display()));
    let registry = Registry::connect(&url).await.expect("database");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut images = Vec::with_capacity(items as usize);
    let started = Instant::now();
    let batch = 20_000;
    let mut n = 0;
    while n < items {
        let mut tx = registry.begin_apply().await.expect("begin");
        for _ in 0..batch.min(items - n) {
            let image = rng.next();
            images.push(image);
            tx.apply(&entry(n + 1, image, rng.next()), None)
                .await
                .expect("apply");
            n += 1;
        }
        tx.commit(&RaftMarks::default()).await.expect("commit");
        if n % 100_000 == 0 {
            eprintln!("{n} registered in {:.0?}", started.elapsed());
        }
    }
    eprintln!("{items} registrations applied in {:.1?}", started.elapsed());

    let queries = 2_000;
    let mut near = Vec::with_capacity(queries);
    let mut found = 0usize;
    for q in 0..queries {
        let mut code = images[(rng.next() % items) as usize];
        for _ in 0..(q % 8) {
            code ^= 1 << (rng.next() % 64);
        }
        let t = Instant::now();
        let matches = registry
            .codes_within(CodeKind::Image, code, 7)
            .await
            .expect("query");
        near.push(t.elapsed());
        found += usize::from(!matches.is_empty());
    }
    let mut unrelated = Vec::with_capacity(queries);
    for _ in 0..queries {
        let code = rng.next();
        let t = Instant::now();
        registry
            .codes_within(CodeKind::Image, code, 7)
            .await
            .expect("query");
        unrelated.push(t.elapsed());
    }
    for (name, mut times) in [("near a registered code", near), ("unrelated", unrelated)] {
        times.sort();
        println!(
            "{items} items, {queries} queries {name}: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
    assert_eq!(
        found, queries,
        "every query within 7 bits of a registered code finds it"
    );
}
