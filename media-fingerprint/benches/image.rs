//! Cost of the image fingerprint against the cost of decoding alone.
//!
//! ```sh
//! cargo bench -p media-fingerprint --bench image
//! ```
//!
//! For each shared photograph: the median time of decoding it with the
//! `image` crate (what any consumer pays), and of `content_fingerprint`
//! (decode, normalise, Image-Codes of the image and its two crops), on one
//! thread, and their ratio.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_fingerprint::{Limits, content_fingerprint, sniff};

const RUNS: usize = 15;

/// Median times of `a` and `b` over [`RUNS`] runs each, taken in turns so
/// that a busy moment of the machine falls on both alike.
fn medians(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let time = |run: &mut dyn FnMut()| {
        let t = Instant::now();
        run();
        t.elapsed()
    };
    let (mut times_a, mut times_b): (Vec<Duration>, Vec<Duration>) =
        (0..RUNS).map(|_| (time(&mut a), time(&mut b))).unzip();
    times_a.sort();
    times_b.sort();
    (times_a[RUNS / 2], times_b[RUNS / 2])
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/media/images");
    let files = [
        "fallen_leaf_2560x1600.jpg",
        "path_2560x1600.jpg",
        "flower.jpg",
        "astronaut.png",
        "coffee.png",
        "coffee.webp",
    ];
    // `cargo bench -p media-fingerprint --bench image -- leaf` times only the
    // files whose names contain "leaf" (cargo itself passes `--bench`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let (mut total_decode, mut total_print) = (Duration::ZERO, Duration::ZERO);
    println!("| file | decode | fingerprint | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    for file in files {
        if !filters.is_empty() && !filters.iter().any(|f| file.contains(f.as_str())) {
            continue;
        }
        let bytes: Arc<[u8]> = match std::fs::read(dir.join(file)) {
            Ok(bytes) => bytes.into(),
            Err(e) => {
                eprintln!("skipping {file}: {e}");
                continue;
            }
        };
        let sniffed = sniff(&bytes, None);
        let (decode, print) = medians(
            || {
                let image = image::load_from_memory(&bytes).map(|i| i.width());
                std::hint::black_box(image.is_ok());
            },
            || {
                // A shared buffer, so that the run times the fingerprint and
                // not a copy of the file (decoding reads it in place too).
                let reader = Cursor::new(Arc::clone(&bytes));
                let p = content_fingerprint(reader, &sniffed, &Limits::default());
                std::hint::black_box(p.is_ok_and(|p| p.image_code.is_some()));
            },
        );
        total_decode += decode;
        total_print += print;
        println!(
            "| {file} | {:.1} ms | {:.1} ms | {:.2} |",
            decode.as_secs_f64() * 1e3,
            print.as_secs_f64() * 1e3,
            print.as_secs_f64() / decode.as_secs_f64()
        );
    }
    println!(
        "| all | {:.1} ms | {:.1} ms | {:.2} |",
        total_decode.as_secs_f64() * 1e3,
        total_print.as_secs_f64() * 1e3,
        total_print.as_secs_f64() / total_decode.as_secs_f64()
    );
}
