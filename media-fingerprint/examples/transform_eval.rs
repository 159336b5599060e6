//! Precision and recall of the fingerprints under the transforms of
//! `scripts/transformed-set.sh`.
//!
//! ```sh
//! scripts/transformed-set.sh /tmp/transformed
//! cargo run --release -p media-fingerprint --example transform_eval -- ../shared/media /tmp/transformed
//! ```
//!
//! Every transformed file is compared with every original of its kind. A
//! pair counts as a match when the verdict is not `different`. It is a true
//! match when both files show the same work: the transform's source, or a
//! natural duplicate of it (the shared media's README lists them). Recall is
//! the share of transformed files that match their source; precision is the
//! share of matches that are true. For excerpts, the offset error is the
//! distance between the found offset and the cut point.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

use media_fingerprint::{
    ContentFingerprint, Limits, MediaKind, SNIFF_LEN, Verdict, compare_image_code_sets,
    content_fingerprint, sniff,
};

/// Works that appear in several shared files.
const GROUPS: [&str; 8] = [
    "coffee",
    "fallen_leaf",
    "path",
    "motorcycle",
    "love_theme",
    "house_lo",
    "clip_a",
    "clip_b",
];

fn group(name: &str) -> String {
    GROUPS
        .iter()
        .find(|g| name.starts_with(*g))
        .map(|g| (*g).to_owned())
        .unwrap_or_else(|| name.split('.').next().unwrap_or(name).to_owned())
}

struct Item {
    name: String,
    kind: MediaKind,
    print: ContentFingerprint,
}

fn fingerprint(path: &Path) -> Option<Item> {
    let bytes = fs::read(path).ok()?;
    let sniffed = sniff(&bytes[..bytes.len().min(SNIFF_LEN)], None);
    // A file that takes longer than the default time bound is left out,
    // like one that cannot be read.
    let print = content_fingerprint(
        BufReader::new(Cursor::new(bytes)),
        &sniffed,
        &Limits::default(),
    )
    .ok()?;
    Some(Item {
        name: path.file_name()?.to_string_lossy().into_owned(),
        kind: sniffed.kind,
        print,
    })
}

/// The verdict and offset for a transformed item against an original.
/// The verdict, offset and distance for a transformed item against an original.
fn compare_with_distance(
    original: &Item,
    transformed: &Item,
) -> Option<(Verdict, Option<f64>, f64)> {
    let (o, t) = (&original.print, &transformed.print);
    if let (Some(a), Some(b)) = (&o.image_code, &t.image_code) {
        // As the match endpoint does: whole images and their crops.
        let codes = |p: &ContentFingerprint, code: &str| -> Vec<String> {
            std::iter::once(code.to_owned())
                .chain(p.image_crop_codes.iter().cloned())
                .collect()
        };
        let (a, b) = (codes(o, a), codes(t, b));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        return compare_image_code_sets(&a, &b)
            .ok()
            .map(|c| (c.verdict, None, c.distance));
    }
    if let (Some(a), Some(b)) = (&o.video, &t.video) {
        let c = media_fingerprint::video::compare_video(a, b);
        return Some((c.verdict, c.offset_seconds, c.distance));
    }
    if let (Some(a), Some(b)) = (&o.audio, &t.audio) {
        let c = media_fingerprint::audio::compare_audio(a, b);
        return Some((c.verdict, c.offset_seconds, c.distance));
    }
    None
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(media), Some(transformed)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: transform_eval SHARED_MEDIA_DIR TRANSFORMED_DIR");
        std::process::exit(2);
    };
    let originals: Vec<Item> = ["images", "audio", "video"]
        .iter()
        .flat_map(|d| files(&Path::new(media).join(d)))
        .filter_map(|p| fingerprint(&p))
        .collect();

    println!(
        "| transform | files | recall | precision | false matches | max offset error (s) | worst distance to source | closest unrelated |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut transforms: Vec<PathBuf> = fs::read_dir(transformed)
        .map(|e| {
            e.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    transforms.sort();
    for dir in transforms {
        let transform = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut files_n, mut recalled, mut matches, mut true_matches) = (0, 0, 0, 0);
        let mut max_offset_error: Option<f64> = None;
        let (mut worst_true, mut closest_false) = (f64::NAN, f64::NAN);
        let mut misses = BTreeMap::new();
        for path in files(&dir) {
            let Some(item) = fingerprint(&path) else {
                continue;
            };
            let Some(source) = originals
                .iter()
                .filter(|o| item.name.starts_with(&o.name))
                .max_by_key(|o| o.name.len())
            else {
                continue;
            };
            files_n += 1;
            let cut: Option<f64> = item
                .name
                .split(".start")
                .nth(1)
                .and_then(|s| s.split('.').next())
                .and_then(|s| s.parse().ok());
            // Within one kind: a video's sound track is compared with videos, not
            // with the music it was scored with.
            for original in originals.iter().filter(|o| o.kind == source.kind) {
                let Some((verdict, offset, distance)) = compare_with_distance(original, &item)
                else {
                    if original.name == source.name {
                        let why = item.print.missing.iter().chain(&original.print.missing);
                        let why: Vec<String> = why.map(|m| m.reason.clone()).collect();
                        misses.insert(
                            format!("{} (no fingerprint: {})", item.name, why.join("; ")),
                            "not compared",
                        );
                    }
                    continue;
                };
                if original.name == source.name {
                    worst_true = worst_true.max(distance);
                } else if group(&original.name) != group(&source.name) {
                    closest_false = closest_false.min(distance);
                }
                if verdict == Verdict::Different {
                    if original.name == source.name {
                        misses.insert(item.name.clone(), "no match with its source");
                    }
                    continue;
                }
                matches += 1;
                if group(&original.name) == group(&source.name) {
                    true_matches += 1;
                } else {
                    misses.insert(format!("{} ~ {}", item.name, original.name), "false match");
                }
                if original.name == source.name {
                    recalled += 1;
                    if let (Some(cut), Some(offset)) = (cut, offset) {
                        let err = (offset - cut).abs();
                        max_offset_error = Some(max_offset_error.map_or(err, |m: f64| m.max(err)));
                    }
                }
            }
        }
        let pct = |a: usize, b: usize| {
            if b == 0 {
                "n/a".to_owned()
            } else {
                format!("{:.1} %", 100.0 * a as f64 / b as f64)
            }
        };
        println!(
            "| {transform} | {files_n} | {} | {} | {} | {} | {worst_true:.3} | {closest_false:.3} |",
            pct(recalled, files_n),
            pct(true_matches, matches),
            matches - true_matches,
            max_offset_error.map_or("n/a".to_owned(), |e| format!("{e:.2}")),
        );
        for (what, why) in misses {
            eprintln!("  {transform}: {what}: {why}");
        }
    }
}
