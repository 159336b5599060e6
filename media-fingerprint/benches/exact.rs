//! Throughput of the exact hashes over a stream, on one thread.
//!
//! ```sh
//! cargo bench -p media-fingerprint --bench exact
//! ```
//!
//! Feeds 256 MiB of pseudo-random bytes in 1 MiB chunks (what the upload
//! spool hands over) through our ISCC Data-Code hasher and iscc-lib's
//! Instance-Code hasher together (the 1 GB/s target) and alone, iscc-lib's
//! own Data-Code hasher for comparison, SHA-256 alone, and `StreamHasher`
//! (both codes plus SHA-256); and our Data-Code over all-zero bytes, where the
//! chunker's lanes never agree and it falls back to byte by byte. Prints the
//! median of 7 runs in GB/s (10^9 bytes per second).

use std::time::Instant;

use media_fingerprint::StreamHasher;
use media_fingerprint::cdc::DataCodeHasher;

const TOTAL: usize = 256 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const RUNS: usize = 7;

fn median_gbps(mut run: impl FnMut()) -> f64 {
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            run();
            TOTAL as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn main() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let chunk: Vec<u8> = (0..CHUNK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();

    let codes = median_gbps(|| {
        let mut data = DataCodeHasher::new();
        let mut instance = iscc_lib::InstanceHasher::new();
        for _ in 0..TOTAL / CHUNK {
            data.update(&chunk);
            instance.update(&chunk);
        }
        std::hint::black_box((data.finish(64), instance.finalize(64)).0.is_ok());
    });
    let data_only = median_gbps(|| {
        let mut data = DataCodeHasher::new();
        for _ in 0..TOTAL / CHUNK {
            data.update(&chunk);
        }
        std::hint::black_box(data.finish(64).is_ok());
    });
    let zeros = vec![0u8; CHUNK];
    let data_zeros = median_gbps(|| {
        let mut data = DataCodeHasher::new();
        for _ in 0..TOTAL / CHUNK {
            data.update(&zeros);
        }
        std::hint::black_box(data.finish(64).is_ok());
    });
    let iscc_lib_data = median_gbps(|| {
        let mut data = iscc_lib::DataHasher::new();
        for _ in 0..TOTAL / CHUNK {
            data.update(&chunk);
        }
        std::hint::black_box(data.finalize(64).is_ok());
    });
    let instance_only = median_gbps(|| {
        let mut instance = iscc_lib::InstanceHasher::new();
        for _ in 0..TOTAL / CHUNK {
            instance.update(&chunk);
        }
        std::hint::black_box(instance.finalize(64).is_ok());
    });
    let sha_only = median_gbps(|| {
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        for _ in 0..TOTAL / CHUNK {
            sha.update(&chunk);
        }
        std::hint::black_box(sha.finish());
    });
    let all = median_gbps(|| {
        let mut hasher = StreamHasher::new();
        for _ in 0..TOTAL / CHUNK {
            hasher.update(&chunk);
        }
        std::hint::black_box(hasher.finish().is_ok());
    });
    println!(
        "Data-Code + Instance-Code: {codes:.2} GB/s (median of {RUNS} runs over {} MiB)",
        TOTAL >> 20
    );
    println!(
        "  Data-Code alone: {data_only:.2} GB/s (iscc-lib DataHasher: {iscc_lib_data:.2} GB/s); Instance-Code alone: {instance_only:.2} GB/s; SHA-256 alone: {sha_only:.2} GB/s"
    );
    println!("StreamHasher (both codes + SHA-256): {all:.2} GB/s");
    println!("Data-Code alone on all-zero bytes (byte-by-byte fallback): {data_zeros:.2} GB/s");
}
