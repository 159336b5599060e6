//! Tests over the shared media: decoding every format, matching natural
//! duplicates and excerpts, and agreement with `fpcalc`.

use std::collections::HashMap;
use std::io::{BufReader, Cursor};
use std::sync::{LazyLock, OnceLock};

use super::*;
use crate::test_support::shared_path;

/// Every shared file with enough sound to fingerprint, relative to
/// `shared/media` (`speech_front_center.wav` lasts 1.4 s: see
/// [`speech_is_too_short`]).
const FILES: [&str; 15] = [
    "audio/elvish-theme.ogg",
    "audio/house_lo.mp3",
    "audio/house_lo.ogg",
    "audio/house_lo.wav",
    "audio/love_theme.m4a",
    "audio/love_theme.mp3",
    "audio/love_theme.ogg",
    "audio/love_theme_30s_to_50s.flac",
    "audio/love_theme_30s_to_50s.wav",
    "audio/loyalists.ogg",
    "video/clip_a_360p_reencoded.mp4",
    "video/clip_a_720p_baseline.mp4",
    "video/clip_a_720p_high.mp4",
    "video/clip_a_excerpt_6s_to_16s.mp4",
    "video/clip_b_720p_high.mp4",
];

/// Each file is decoded once per test run, however many tests use it.
static PRINTS: LazyLock<HashMap<&'static str, OnceLock<AudioPrint>>> =
    LazyLock::new(|| FILES.iter().map(|&f| (f, OnceLock::new())).collect());

/// The print of a shared file, decoded on first use.
fn print_of(file: &str) -> &'static AudioPrint {
    PRINTS
        .get(file)
        .unwrap_or_else(|| panic!("{file} is not in FILES"))
        .get_or_init(|| {
            let path = shared_path("media").join(file);
            let reader = BufReader::new(std::fs::File::open(&path).expect("open media"));
            audio_print(reader, &Limits::default(), &Watch::none())
                .unwrap_or_else(|e| panic!("{file}: {e}"))
        })
}

/// Which recording a file holds; files of one group are natural duplicates.
/// The clips' sound tracks are cut from the game music: clip a from
/// `loyalists.ogg` and clip b from `elvish-theme.ogg`, both from 40 s on.
fn group(file: &str) -> &str {
    let name = file.rsplit('/').next().unwrap_or(file);
    if name.starts_with("love_theme") {
        "love_theme"
    } else if name.starts_with("house_lo") {
        "house_lo"
    } else if name.starts_with("clip_a") || name.starts_with("loyalists") {
        "loyalists"
    } else if name.starts_with("clip_b") || name.starts_with("elvish-theme") {
        "elvish-theme"
    } else {
        name
    }
}

/// Where a file's audio starts in its group's recording, in seconds, as the
/// shared media's README (and the clips' sources) say.
fn start_in_recording(file: &str) -> f64 {
    if file.contains("30s_to_50s") {
        30.0
    } else if file.contains("excerpt_6s") {
        46.0
    } else if file.contains("clip_") {
        40.0
    } else {
        0.0
    }
}

/// Where the second file of a related pair should start in the first.
fn expected_offset(a: &str, b: &str) -> Option<f64> {
    // Clip a's 6 s to 16 s excerpt sits in loyalists at 46 s, but the music
    // repeats itself 33.4 s later and matches there a little better (0.025
    // against 0.037): both are right.
    let looped = |x: &str, y: &str| x.contains("loyalists") && y.contains("excerpt_6s");
    if looped(a, b) || looped(b, a) {
        return None;
    }
    Some(start_in_recording(b) - start_in_recording(a))
}

/// Every file decodes, with a plausible duration and about eight items a second.
#[test]
fn every_shared_file_is_fingerprinted() {
    for file in FILES {
        let print = print_of(file);
        let expected_items = print.duration_seconds / ITEM_SECONDS;
        assert!(print.duration_seconds > 5.0, "{file}");
        assert!(
            (print.chromaprint.len() as f64) > expected_items - 30.0,
            "{file}: {} items for {:.1} s",
            print.chromaprint.len(),
            print.duration_seconds
        );
    }
}

/// `speech_front_center.wav` lasts 1.4 s, too short for Chromaprint (fpcalc
/// says "Empty fingerprint"): it gets an error that says so, and so can never
/// match music.
#[test]
fn speech_is_too_short() {
    let path = shared_path("media/audio/speech_front_center.wav");
    let reader = BufReader::new(std::fs::File::open(path).expect("open"));
    let error = audio_print(reader, &Limits::default(), &Watch::none()).expect_err("too short");
    assert!(error.to_string().contains("too short"), "{error}");
}

/// Every pair of shared files: natural duplicates are found where they are
/// (re-encodes at 0 s, love_theme's excerpt at 30 s, clip a's excerpt at
/// 6 s, within 1 s), unrelated pairs are not.
///
/// Measured: re-encodes of one recording are at most 0.041 apart (house_lo
/// in three codecs, love_theme in three, clip a's three encodings),
/// excerpts at most 0.077, unrelated pairs at least 0.370 (house_lo and
/// loyalists).
#[test]
fn duplicates_are_found_and_unrelated_pairs_are_not() {
    let mut failures = Vec::new();
    let (mut farthest_related, mut closest_unrelated) = (0.0f64, 1.0f64);
    for (i, a) in FILES.iter().enumerate() {
        for b in &FILES[i + 1..] {
            for (a, b) in [(a, b), (b, a)] {
                let c = compare_audio(print_of(a), print_of(b));
                eprintln!(
                    "{a} ~ {b}: {:.3} at {:.2} s, {:?}",
                    c.distance,
                    c.offset_seconds.unwrap_or(f64::NAN),
                    c.verdict
                );
                if group(a) != group(b) {
                    closest_unrelated = closest_unrelated.min(c.distance);
                    if c.verdict != Verdict::Different {
                        failures.push(format!("unrelated {a} ~ {b}: {c:?}"));
                    }
                    continue;
                }
                farthest_related = farthest_related.max(c.distance);
                if c.verdict == Verdict::Different {
                    failures.push(format!("related {a} ~ {b}: {c:?}"));
                }
                let offset = c.offset_seconds.unwrap_or(f64::NAN);
                if let Some(expected) = expected_offset(a, b)
                    && (offset - expected).abs() > 1.0
                {
                    failures.push(format!("{a} ~ {b}: offset {offset}, not {expected}"));
                }
                let whole = !a.contains("excerpt")
                    && !b.contains("excerpt")
                    && a.contains("30s_to_50s") == b.contains("30s_to_50s")
                    && a.contains("clip") == b.contains("clip");
                if whole && c.verdict != Verdict::Same {
                    failures.push(format!("re-encode {a} ~ {b}: {c:?}"));
                }
            }
        }
    }
    eprintln!(
        "farthest related pair: {farthest_related:.3}, closest unrelated: {closest_unrelated:.3}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Agreement with the reference, `fpcalc -raw -signed -length 0` (Debian
/// libchromaprint-tools 1.5.1 over ffmpeg), as iscc-sdk runs it: the
/// Audio-Code (64 and 256 bits) from our vector against the one from
/// fpcalc's, at most the number of bits apart measured when this test was
/// written.
///
/// Bit error rates of our raw vectors against fpcalc's, item by item (same
/// lengths for all but clip a's excerpt, 60 against 59 items): house_lo 0 in
/// all three codecs; loyalists 0.003; love_theme mp3 0.012, ogg 0.013,
/// m4a 0.029; the 30 s to 50 s excerpt 0.017; elvish-theme 0.019; the clips
/// 0.016 to 0.034. Where they are not identical: rusty-chromaprint resamples
/// with rubato, fpcalc with ffmpeg's swresample; and symphonia does not apply
/// MP4 edit lists, so AAC keeps the encoder's 1024 priming samples that ffmpeg
/// drops (a 23 ms shift, hence m4a and the clips are the farthest).
#[test]
fn audio_codes_agree_with_fpcalc() {
    // (file, bits apart at 64, at 256, fpcalc's 256-bit Audio-Code)
    let reference = [
        (
            "audio/elvish-theme.ogg",
            1,
            6,
            "ISCC:EIDTUSBQNI5MZOBKHDADISRIBQZCUOSKWBFJR2BSEIVAJMCKPIEDAKQ",
        ),
        (
            "audio/house_lo.mp3",
            0,
            0,
            "ISCC:EID5KRPV77KQP5P72VKXKX6V2TYT5VIH2XONKB7V7XK5L4L725LXK7Y",
        ),
        (
            "audio/house_lo.ogg",
            0,
            0,
            "ISCC:EID5KR7V77KUP5P52VKXK76V33YT5VIH6XONKB7V77KUL5P727LHK7Y",
        ),
        (
            "audio/house_lo.wav",
            0,
            0,
            "ISCC:EID5KR7V77KQP5P52VKXK76V23YX5VIH2XONKB7V7XKVP57727KXK7Y",
        ),
        (
            "audio/love_theme.m4a",
            3,
            9,
            "ISCC:EIDSQAFYMYUCHOCHVIYLQ3RIBW4X4JQCXRWKQDAYMYACHOKWFIB3Q3Q",
        ),
        (
            "audio/love_theme.mp3",
            1,
            3,
            "ISCC:EIDSQAFYMYUCHOCHVIYLQ2RIBW4X4JQCXB6KRDAYMYACHOKUFIB3Q3Q",
        ),
        (
            "audio/love_theme.ogg",
            2,
            6,
            "ISCC:EIDSQIFYMYUCHOCHVIYLQ2RIBW4X4JQCXB6KRDAYMYACHOKWFIB3Q3A",
        ),
        (
            "audio/love_theme_30s_to_50s.flac",
            3,
            9,
            "ISCC:EID2QMR2NYVDUOCMFA2KUKF2CM5E52AWRI2KUNA2J3UDVOTMFAZKA2Q",
        ),
        (
            "audio/love_theme_30s_to_50s.wav",
            3,
            9,
            "ISCC:EID2QMR2NYVDUOCMFA2KUKF2CM5E52AWRI2KUNA2J3UDVOTMFAZKA2Q",
        ),
        (
            "audio/loyalists.ogg",
            1,
            5,
            "ISCC:EIDWIYNRPYQGD5I5MRS3D6DENG4W5KDBXF3O2YFR5IQOLNKWMRQ3COA",
        ),
        (
            "video/clip_a_360p_reencoded.mp4",
            2,
            6,
            "ISCC:EIDWIZ5R7ACK5UI4IVW7D7XOMEZ7WYFDGCU6IYVR7ICK7UL4MTQTPOQ",
        ),
        (
            "video/clip_a_720p_baseline.mp4",
            2,
            8,
            "ISCC:EIDWIYNR7ACK54I4IVW7D7TOMFYPWYFBGCE6IYVR5ICK74L4MTQTPGA",
        ),
        (
            "video/clip_a_720p_high.mp4",
            2,
            8,
            "ISCC:EIDWIYNR7ACK54I4IVW7D7TOMFYPWYFBGCE6IYVR5ICK74L4MTQTPGA",
        ),
        (
            "video/clip_a_excerpt_6s_to_16s.mp4",
            3,
            10,
            "ISCC:EIDWMYJR7IDOY4J4NYT3D6XNMH27UYXBGKE64YXR7ZDO2NNYMRQSGGQ",
        ),
        (
            "video/clip_b_720p_high.mp4",
            2,
            10,
            "ISCC:EIDTRTFWHI5IJPCSWDWGEOREY2LD4MUMCYMLBTMWGQ4IIME2HKGLYGQ",
        ),
    ];
    assert_eq!(reference.len(), FILES.len());
    let body = |code: &str| iscc_lib::iscc_decode(code).expect("valid code").4;
    for (file, max64, max256, theirs) in reference {
        let ours = audio_code_with_bits(&print_of(file).chromaprint, 256).expect("code");
        let (ours, theirs) = (body(&ours), body(theirs));
        let apart = |bytes: usize| -> u32 {
            ours[..bytes]
                .iter()
                .zip(&theirs[..bytes])
                .map(|(x, y)| (x ^ y).count_ones())
                .sum()
        };
        eprintln!(
            "{file}: {} of 64, {} of 256 bits from fpcalc",
            apart(8),
            apart(32)
        );
        assert!(apart(8) <= max64, "{file}: {} bits of 64", apart(8));
        assert!(apart(32) <= max256, "{file}: {} bits of 256", apart(32));
        // The 64-bit code we store is the first 64 bits of the 256-bit one.
        let code64 = audio_code(print_of(file)).expect("code");
        assert_eq!(body(&code64)[..], ours[..8], "{file}");
    }
}

/// Truncated and corrupted files give a fingerprint or an error, never a
/// panic; a file cut short still fingerprints what it holds.
#[test]
fn damaged_files_never_panic() {
    let files = [
        "audio/house_lo.mp3",
        "audio/house_lo.ogg",
        "audio/house_lo.wav",
        "video/clip_a_excerpt_6s_to_16s.mp4",
    ];
    for file in files {
        let bytes = std::fs::read(shared_path("media").join(file)).expect("read");
        let full = print_of(file).chromaprint.len();
        for tenths in [0, 1, 3, 5, 7, 9] {
            let keep = bytes.len() * tenths / 10;
            let result = audio_print(
                Cursor::new(bytes[..keep].to_vec()),
                &Limits::default(),
                &Watch::none(),
            );
            // Streams without an index at the end decode up to the cut.
            if tenths >= 7 && !file.ends_with(".mp4") {
                let print = result.unwrap_or_else(|e| panic!("{file} cut at {keep}: {e}"));
                assert!(print.chromaprint.len() < full, "{file} cut at {keep}");
            }
        }
        // Headers are where a flipped byte does the most harm.
        let spread = (0..bytes.len()).step_by(bytes.len() / 16 + 1);
        for position in (0..512).step_by(37).chain(spread) {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0xa5;
            if let Err(error) =
                audio_print(Cursor::new(damaged), &Limits::default(), &Watch::none())
            {
                assert!(!error.to_string().is_empty());
            }
        }
    }
}
