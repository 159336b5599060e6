//! Audio fingerprint throughput, decode included, on one thread, as a
//! multiple of realtime for each shared audio file.
//!
//! Run with `cargo bench -p media-fingerprint --bench audio` (or
//! `scripts/bench-audio.sh`, which puts `fpcalc` beside it). Each file is read
//! into memory first, so the figure is decode + Chromaprint, not disk. After
//! one warm-up run, each file is timed `RUNS` times, each time over enough
//! repetitions to last at least `MIN_SAMPLE`; the median is reported, as wall
//! time and as time on the CPU (from
//! `/proc/thread-self/schedstat`, on Linux): on a machine shared with other
//! work the CPU time is the faithful measure of one core's throughput.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_fingerprint::{Limits, SNIFF_LEN, content_fingerprint, sniff};

/// Timed runs per file.
const RUNS: usize = 7;

/// Shortest timed run: the kernel updates a running thread's CPU time only
/// every scheduler tick (a few ms), so short files are repeated.
const MIN_SAMPLE: Duration = Duration::from_millis(200);

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/media/audio"));
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    files.sort();

    println!(
        "{:<34} {:>9} {:>12} {:>10} {:>12} {:>10}",
        "file", "audio s", "wall ms", "x realtime", "cpu ms", "x realtime"
    );
    let (mut total_audio, mut total_time, mut total_cpu) = (0.0, Duration::ZERO, Duration::ZERO);
    for path in files {
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
        let fingerprint = || {
            let sniffed = sniff(&bytes[..bytes.len().min(SNIFF_LEN)], None);
            // A file the default time bound stops counts as one without a
            // fingerprint: it is skipped below.
            content_fingerprint(Cursor::new(bytes), &sniffed, &Limits::default())
                .unwrap_or_default()
        };
        // The warm-up run also tells whether the file can be fingerprinted.
        let warm_up = Instant::now();
        let Some(audio) = fingerprint().audio else {
            println!("{name:<34} {:>9}", "skipped (no fingerprint)");
            continue;
        };
        let once = warm_up.elapsed().max(Duration::from_micros(1));
        let reps = u32::try_from(MIN_SAMPLE.as_nanos() / once.as_nanos() + 1).unwrap_or(u32::MAX);
        let (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..RUNS)
            .map(|_| {
                let (start, start_cpu) = (Instant::now(), thread_cpu_time());
                for _ in 0..reps {
                    std::hint::black_box(fingerprint());
                }
                let cpu = thread_cpu_time().saturating_sub(start_cpu);
                (start.elapsed() / reps, cpu / reps)
            })
            .unzip();
        wall.sort();
        cpu.sort();
        let (wall, cpu) = (wall[RUNS / 2], cpu[RUNS / 2]);
        total_audio += audio.duration_seconds;
        total_time += wall;
        total_cpu += cpu;
        print_row(&name, audio.duration_seconds, wall, cpu);
    }
    print_row("all files", total_audio, total_time, total_cpu);
}

fn print_row(name: &str, seconds: f64, wall: Duration, cpu: Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let times = |d: Duration| seconds / d.as_secs_f64();
    if cpu.is_zero() {
        println!(
            "{name:<34} {seconds:>9.2} {:>12.2} {:>10.0}",
            ms(wall),
            times(wall)
        );
    } else {
        println!(
            "{name:<34} {seconds:>9.2} {:>12.2} {:>10.0} {:>12.2} {:>10.0}",
            ms(wall),
            times(wall),
            ms(cpu),
            times(cpu)
        );
    }
}

/// Time this thread has spent on a CPU; zero where the kernel does not say.
fn thread_cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}
