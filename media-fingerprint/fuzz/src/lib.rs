//! Helpers shared by the libFuzzer targets in `fuzz_targets/`.
//!
//! Each target feeds arbitrary bytes to one decoder entry point of
//! `media_fingerprint` and treats a panic, an abort, a timeout or an
//! allocation over libFuzzer's `-malloc_limit_mb` as a crash.
//!
//! # Layout
//!
//! - [`reader`]: the reader the service hands to `content_fingerprint`.
//! - [`panic_policy`]: whether panics the library catches itself count.
//! - [`assert_missing_is_explained`]: the invariant every fingerprint keeps.
//! - [`show`]: what an input gave, for checking that seeds reach the codecs.

use std::io::{BufReader, Cursor};

use media_fingerprint::ContentFingerprint;

/// The bytes as a buffered, seekable reader that owns them, as
/// `content_fingerprint` needs (`BufRead + Seek + Send + Sync + 'static`).
pub fn reader(data: &[u8]) -> BufReader<Cursor<Vec<u8>>> {
    BufReader::new(Cursor::new(data.to_vec()))
}

/// Applies the panic policy chosen by `FUZZ_ALLOW_CAUGHT_PANICS`.
///
/// By default any panic aborts, even one that the library catches with
/// `catch_unwind` around a third-party decoder and turns into a missing
/// fingerprint: such a panic is still a decoder bug worth knowing about
/// (libfuzzer-sys installs that hook). With `FUZZ_ALLOW_CAUGHT_PANICS=1` a
/// caught panic is only reported on stderr, once per source location, and
/// fuzzing goes on; a panic that escapes `content_fingerprint` still aborts,
/// because libfuzzer-sys aborts on any panic that reaches the harness.
pub fn panic_policy() {
    if std::env::var_os("FUZZ_ALLOW_CAUGHT_PANICS").is_none_or(|v| v.is_empty() || v == "0") {
        return;
    }
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
        // A poisoned set only means another panic hit the lock; report anyway.
        let new = seen
            .lock()
            .map_or(true, |mut seen| seen.insert(location.clone()));
        if new {
            eprintln!("FUZZ: panic (caught or not) at {location}: {info}");
        }
    }));
}

/// With `FUZZ_SHOW=1`, prints what the input gave (codes, durations, frame
/// counts and reasons) to stderr. Run a target binary on files instead of a
/// corpus directory to see how far each one gets:
/// `FUZZ_SHOW=1 fuzz/target/x86_64-unknown-linux-gnu/release/video FILE...`
pub fn show(fp: &ContentFingerprint) {
    static SHOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*SHOW.get_or_init(|| std::env::var_os("FUZZ_SHOW").is_some_and(|v| v == "1")) {
        return;
    }
    eprintln!(
        "FUZZ_SHOW image {:?}, audio {:?} ({:?} s), video {:?} ({:?} s, {:?} frames), missing {:?}",
        fp.image_code,
        fp.audio_code,
        fp.audio.as_ref().map(|a| a.duration_seconds),
        fp.video_code,
        fp.video.as_ref().map(|v| v.duration_seconds),
        fp.video.as_ref().map(|v| v.frame_signatures.len()),
        fp.missing
    );
}

/// A fingerprint that applies but was not computed is listed with a reason,
/// and one that was computed is not also listed as missing.
pub fn assert_missing_is_explained(fp: &ContentFingerprint, name: &str, computed: bool) {
    let listed = fp.missing.iter().filter(|m| m.fingerprint == name).count();
    assert!(
        computed != (listed == 1) && listed <= 1,
        "{name}: computed = {computed}, listed as missing {listed} times: {:?}",
        fp.missing
    );
    for missing in &fp.missing {
        assert!(!missing.reason.is_empty(), "empty reason: {missing:?}");
    }
}
