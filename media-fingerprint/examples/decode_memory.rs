//! Measures the peak memory of `content_fingerprint` on each file and sets it
//! beside `decode_cost`'s estimate, for the table in `decode_cost`'s docs.
//!
//! ```sh
//! cargo run --release -p media-fingerprint --example decode_memory            # shared media + synthetic files
//! cargo run --release -p media-fingerprint --example decode_memory -- FILE... # these files
//! ```
//!
//! Each file is measured in a process of its own (this program run again
//! with `--one FILE`): one fingerprint as a warm-up, so code pages and the
//! allocator's first arenas are in place, then the peak resident set is
//! reset (`/proc/self/clear_refs`) and one more fingerprint is taken; the
//! measured peak is how far `VmHWM` rose above the resident set before it.
//! glibc is told to give every block of 64 KiB or more its own mapping, and
//! to return it when freed, so memory freed by the warm-up cannot hide the
//! second run's growth. openh264 allocates with `malloc` too, so it is
//! counted like the rest.
//!
//! Synthetic files (large images of each colour type, EXIF-rotated and
//! progressive ones, hours of FLAC) are written to a temporary folder first.

use std::fs;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::{
    DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, ImageEncoder, Luma, LumaA, Rgb, RgbImage,
    Rgba, RgbaImage,
};
use media_fingerprint::{Limits, SNIFF_LEN, content_fingerprint, decode_cost, sniff};

#[allow(dead_code)]
#[path = "../src/test_support.rs"]
mod test_support;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--one") {
        match args.get(1) {
            Some(path) => measure_one(Path::new(path)),
            None => eprintln!("--one needs a file"),
        }
        return;
    }
    let files: Vec<PathBuf> = if args.is_empty() {
        let mut files = shared_media();
        match synthetic_files() {
            Ok(mut synthetic) => files.append(&mut synthetic),
            Err(e) => eprintln!("could not write the synthetic files: {e}"),
        }
        files
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this program's path");
        return;
    };
    println!("| file | measured peak | estimate | estimate / measured | decode | estimate took |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for file in files {
        let output = Command::new(&me)
            .arg("--one")
            .arg(&file)
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .env("MALLOC_TRIM_THRESHOLD_", "131072")
            .env("MALLOC_ARENA_MAX", "1")
            .output();
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match output {
            Ok(output) if output.status.success() => {
                let line = String::from_utf8_lossy(&output.stdout);
                let fields: Vec<&str> = line.trim().split('\t').collect();
                if let [measured, estimate, decode_ms, estimate_us] = fields[..] {
                    let measured: f64 = measured.parse().unwrap_or(f64::NAN);
                    let estimate: f64 = estimate.parse().unwrap_or(f64::NAN);
                    println!(
                        "| {name} | {} | {} | {:.2} | {decode_ms} ms | {estimate_us} µs |",
                        mib(measured),
                        mib(estimate),
                        estimate / measured
                    );
                } else {
                    println!("| {name} | {} |", line.trim());
                }
            }
            Ok(output) => println!(
                "| {name} | failed: {} |",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => println!("| {name} | could not run: {e} |"),
        }
    }
}

/// `bytes` in MiB, for the table.
fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Fingerprints `path` twice and prints the second run's peak growth, the
/// estimate, the decode time and the estimate's time, tab-separated.
fn measure_one(path: &Path) {
    let mut head = vec![0u8; SNIFF_LEN];
    let read = fs::File::open(path).and_then(|mut f| f.read(&mut head));
    let Ok(read) = read else {
        println!("cannot read the file");
        return;
    };
    let sniffed = sniff(&head[..read], None);
    let limits = Limits {
        // The whole decode is what is measured, however long it takes.
        max_decode_time: None,
        ..Limits::default()
    };
    let open = || fs::File::open(path).map(BufReader::new);
    let Ok(reader) = open() else {
        println!("cannot open the file");
        return;
    };
    let started = Instant::now();
    let estimate = decode_cost(reader, &sniffed, &limits);
    let estimate_took = started.elapsed();
    let estimate = match estimate {
        Ok(cost) => cost.peak_bytes,
        Err(e) => {
            println!("estimate refused: {e}");
            return;
        }
    };
    let fingerprint = || -> Option<Duration> {
        let started = Instant::now();
        let print = content_fingerprint(open().ok()?, &sniffed, &limits).ok()?;
        std::hint::black_box(&print);
        if !print.missing.is_empty() {
            eprintln!("{}: {:?}", path.display(), print.missing);
        }
        Some(started.elapsed())
    };
    if fingerprint().is_none() {
        println!("fingerprint failed");
        return;
    }
    if fs::write("/proc/self/clear_refs", "5").is_err() {
        println!("cannot reset the peak resident set");
        return;
    }
    let before = status_kib("VmRSS:");
    let took = fingerprint().unwrap_or_default();
    let peak = status_kib("VmHWM:");
    let measured = peak.saturating_sub(before) * 1024;
    println!(
        "{measured}\t{estimate}\t{}\t{}",
        took.as_millis(),
        estimate_took.as_micros()
    );
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// The shared test media, images first.
fn shared_media() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/media");
    let mut files = Vec::new();
    for kind in ["images", "audio", "video"] {
        if let Ok(entries) = fs::read_dir(root.join(kind)) {
            let mut found: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            found.sort();
            files.extend(
                found
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e != "md")),
            );
        }
    }
    files
}

/// Writes the synthetic files (once) and returns their paths.
fn synthetic_files() -> std::io::Result<Vec<PathBuf>> {
    let dir = std::env::temp_dir().join("media-fingerprint-decode-memory");
    fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    let mut add = |name: &str, make: &dyn Fn() -> Vec<u8>| -> std::io::Result<()> {
        let path = dir.join(name);
        if !path.exists() {
            fs::write(&path, make())?;
        }
        files.push(path);
        Ok(())
    };
    let png = |image: DynamicImage| encode(&image, image::ImageFormat::Png);
    add("rgba8_10000x10000.png", &|| {
        png(RgbaImage::from_pixel(10_000, 10_000, Rgba([40, 90, 200, 255])).into())
    })?;
    add("rgb8_8000x6000.png", &|| {
        png(gradient_rgb(8000, 6000).into())
    })?;
    add("rgb8_8000x6000_rotated.png", &|| {
        png_with_exif(&gradient_rgb(8000, 6000).into(), 6)
    })?;
    add("l8_10000x8000.png", &|| {
        png(GrayImage::from_fn(10_000, 8000, |x, y| Luma([((x ^ y) & 0xff) as u8])).into())
    })?;
    add("la8_8000x6000.png", &|| {
        png(GrayAlphaImage::from_fn(8000, 6000, |x, y| {
            LumaA([(x & 0xff) as u8, (y & 0xff) as u8])
        })
        .into())
    })?;
    add("rgb16_5000x4000.png", &|| {
        let image: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(5000, 4000, |x, y| {
            Rgb([(x * 13) as u16, (y * 17) as u16, 9000])
        });
        png(image.into())
    })?;
    add("rgba16_5000x4000.png", &|| {
        let image: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(5000, 4000, |x, y| {
            Rgba([(x * 13) as u16, (y * 17) as u16, 9000, 60_000])
        });
        png(image.into())
    })?;
    for format in [
        image::ImageFormat::Tiff,
        image::ImageFormat::WebP,
        image::ImageFormat::Bmp,
        image::ImageFormat::Gif,
    ] {
        let extension = format.extensions_str().first().copied().unwrap_or("bin");
        // GIF quantises colours, slowly: a smaller picture.
        let (width, height) = if format == image::ImageFormat::Gif {
            (2000, 1500)
        } else {
            (4000, 3000)
        };
        add(&format!("rgb8_{width}x{height}.{extension}"), &|| {
            encode(&gradient_rgb(width, height).into(), format)
        })?;
    }
    add("rgb8_8000x6000.jpg", &|| {
        encode(&gradient_rgb(8000, 6000).into(), image::ImageFormat::Jpeg)
    })?;
    let baseline = dir.join("rgb8_8000x6000.jpg");
    let progressive = dir.join("rgb8_8000x6000_progressive.jpg");
    if !progressive.exists() {
        // jpegtran (libjpeg-turbo) where it is installed; skipped elsewhere.
        let made = Command::new("jpegtran")
            .args(["-progressive", "-outfile"])
            .arg(&progressive)
            .arg(&baseline)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no jpegtran: no progressive JPEG measured");
        }
    }
    let progressive = progressive.exists().then_some(progressive);
    let flac = |rate: u32, channels: u8, hours: f64| {
        test_support::flac_silence(rate, channels, (f64::from(rate) * hours * 3600.0) as u64)
    };
    add("silence_1h_8k_mono.flac", &|| flac(8000, 1, 1.0))?;
    add("silence_3h_44k_stereo.flac", &|| flac(44_100, 2, 3.0))?;
    add("silence_6h_48k_stereo.flac", &|| flac(48_000, 2, 6.0))?;
    add("silence_20min_48k_8ch.flac", &|| flac(48_000, 8, 1.0 / 3.0))?;
    files.extend(progressive);
    Ok(files)
}

/// A smooth colour gradient with some texture, so the encoders do real work.
fn gradient_rgb(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x / 32) as u8, (y / 24) as u8, ((x ^ y) & 0x3f) as u8])
    })
}

/// `image` in `format`, in memory.
fn encode(image: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(e) = image.write_to(&mut Cursor::new(&mut bytes), format) {
        eprintln!("could not encode: {e}");
    }
    bytes
}

/// A PNG of `image` whose EXIF says to turn it by `orientation`.
fn png_with_exif(image: &DynamicImage, orientation: u16) -> Vec<u8> {
    // Big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1.
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
    exif.extend(orientation.to_be_bytes());
    exif.extend([0, 0, 0, 0, 0, 0]);
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    let written = encoder
        .set_exif_metadata(exif)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            encoder
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(|e| e.to_string())
        });
    if let Err(e) = written {
        eprintln!("could not encode: {e}");
    }
    bytes
}
