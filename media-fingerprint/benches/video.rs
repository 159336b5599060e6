//! Video fingerprint throughput (demux, H.264 decode, 5 fps frame
//! signatures) on one thread, as a multiple of realtime, for each 720p
//! shared clip; or, with `--file PATH`, one run over one file, for measuring
//! peak memory from outside.
//!
//! Run with `cargo bench -p media-fingerprint --bench video` (or
//! `scripts/bench-video.sh`, which puts ffmpeg's signature filter beside it
//! and measures peak RSS on a long file). Each clip is read into memory
//! first, so the figure is the fingerprint, not the disk. Each clip is
//! fingerprinted `RUNS` times after one warm-up run; the median is reported.

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_fingerprint::Limits;
use media_fingerprint::video::{VideoPrint, video_fingerprint};

/// Timed runs per clip.
const RUNS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--file") {
        let Some(path) = args.get(at + 1) else {
            eprintln!("--file needs a path");
            std::process::exit(2);
        };
        one_file(Path::new(path));
        return;
    }
    let dir = args
        .iter()
        .find(|arg| !arg.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/media/video"));
    let mut clips: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("720p"))
            .collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    clips.sort();

    println!(
        "{:<34} {:>9} {:>12} {:>10}",
        "file", "video s", "median ms", "x realtime"
    );
    let (mut total_video, mut total_time) = (0.0, Duration::ZERO);
    for path in clips {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let bytes: &'static [u8] = match std::fs::read(&path) {
            Ok(bytes) => Box::leak(bytes.into_boxed_slice()),
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        let fingerprint = || video_fingerprint(Cursor::new(bytes), &Limits::default());
        // The warm-up run also tells whether the clip can be fingerprinted.
        let print: VideoPrint = match fingerprint() {
            Ok(print) => print,
            Err(e) => {
                println!("{name:<34} skipped ({e})");
                continue;
            }
        };
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let _ = std::hint::black_box(fingerprint());
                start.elapsed()
            })
            .collect();
        times.sort();
        let median = times[RUNS / 2];
        total_video += print.duration_seconds;
        total_time += median;
        println!(
            "{name:<34} {:>9.1} {:>12.1} {:>10.1}",
            print.duration_seconds,
            median.as_secs_f64() * 1000.0,
            print.duration_seconds / median.as_secs_f64()
        );
    }
    if total_time > Duration::ZERO {
        println!(
            "{:<34} {total_video:>9.1} {:>12.1} {:>10.1}",
            "all",
            total_time.as_secs_f64() * 1000.0,
            total_video / total_time.as_secs_f64()
        );
    }
}

/// Fingerprints one file once, streaming it from disk as the service does.
fn one_file(path: &Path) {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    match video_fingerprint(file, &Limits::default()) {
        Ok(print) => {
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "{}: {:.1} s of video, {} signatures, {seconds:.1} s, {:.1}x realtime",
                path.display(),
                print.duration_seconds,
                print.frame_signatures.len(),
                print.duration_seconds / seconds
            );
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
