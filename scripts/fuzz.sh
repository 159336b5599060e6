#!/usr/bin/env bash
# Runs one cargo-fuzz target of media-fingerprint for a given time.
#
#   scripts/fuzz.sh TARGET SECONDS [LIBFUZZER_ARGS...]
#
# TARGET is one of: image, audio, video, sniff_exact
# (media-fingerprint/fuzz/fuzz_targets/). Extra arguments go to libFuzzer,
# e.g. -max_len=65536 or -seed=1.
#
# What it does:
# - installs cargo-fuzz if it is missing;
# - builds on the stable toolchain: cargo-fuzz passes nightly-only flags
#   (-Zsanitizer, -Cpasses=sancov-module, ...), which RUSTC_BOOTSTRAP=1 lets
#   stable rustc accept; no nightly toolchain is needed;
# - uses AddressSanitizer (set FUZZ_SANITIZER=none to turn it off); ASan also
#   makes -malloc_limit_mb work, so one allocation over 2 GiB is a crash;
# - on the first run, seeds media-fingerprint/fuzz/corpus/TARGET with copies
#   of ../shared/media files of the right kind (never touching shared/) and,
#   if ffmpeg is installed, with small re-encodes of them, which decode in
#   milliseconds and so let the fuzzer mutate inside the codecs;
# - runs one libFuzzer process (one job, one worker: never more, since the
#   machine's cores are shared) for SECONDS, with RSS and malloc limits of
#   2 GiB and a per-input timeout of FUZZ_TIMEOUT seconds (default 60);
# - caps generated inputs at a size per target (-max_len, see below; pass
#   your own -max_len to change it): the full-size seeds of several MB take
#   seconds each under ASan, and the corpus fills with MB-sized mutants, so
#   a 10-minute run would try only a few thousand inputs. Seeds longer than
#   the cap are read truncated, which exercises truncated files.
#
# Every panic is a crash, including panics the library catches around
# third-party decoders. Set FUZZ_ALLOW_CAUGHT_PANICS=1 to only report those
# (once per source location) and go on; a panic that escapes
# content_fingerprint still aborts.
#
# Output goes to the terminal and to media-fingerprint/fuzz/logs/. Crash
# inputs land in media-fingerprint/fuzz/artifacts/TARGET/; minimise one with
#   cd media-fingerprint && RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s address TARGET FILE
# Exit status: 0 if no crash, non-zero otherwise.
set -euo pipefail

usage() {
    echo "usage: $0 TARGET SECONDS [LIBFUZZER_ARGS...]" >&2
    echo "targets: image audio video sniff_exact" >&2
    exit 2
}

[ $# -ge 2 ] || usage
target=$1
seconds=$2
shift 2
case "$target" in image | audio | video | sniff_exact) ;; *) usage ;; esac
case "$seconds" in '' | *[!0-9]*) usage ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
crate="$root/media-fingerprint"
fuzz_dir="$crate/fuzz"
media="${MEDIA_DIR:-$root/../shared/media}"
corpus="$fuzz_dir/corpus/$target"
sanitizer="${FUZZ_SANITIZER:-address}"
timeout="${FUZZ_TIMEOUT:-60}"
# Largest generated input, per target: above the small derived seeds (an
# MP4 of four seconds at 128x72 is about 40 KB) and the hasher's 64 KiB
# batches, far below the full-size media.
case "$target" in
image | audio) max_len=131072 ;;
video | sniff_exact) max_len=262144 ;;
esac

# The fuzz crate's own target directory, whatever the caller's environment
# says: fuzz builds use other flags and must not disturb the workspace's.
export CARGO_TARGET_DIR="$fuzz_dir/target"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# Copies of the shared media files with the given extensions.
copy_media() {
    local folder=$1
    shift
    local ext file
    for ext in "$@"; do
        for file in "$media/$folder"/*."$ext"; do
            [ -f "$file" ] && cp "$file" "$corpus/"
        done
    done
    return 0
}

# Small re-encodes of the shared media, made with ffmpeg. Each is optional:
# an encoder this ffmpeg lacks just means one seed fewer.
derive() {
    local input=$1 output=$2
    shift 2
    ffmpeg -nostdin -v error -y -i "$input" "$@" "$corpus/derived-$output" ||
        echo "could not derive seed $output" >&2
}

derive_seeds() {
    command -v ffmpeg >/dev/null || {
        echo "ffmpeg not found: seeding with the full-size media files only" >&2
        return 0
    }
    local image="$media/images/coffee.png"
    local sound="$media/audio/house_lo.wav"
    local clip="$media/video/clip_a_720p_high.mp4"
    case "$target" in
    image)
        local small=(-vf scale=48:32 -frames:v 1)
        derive "$image" small.png "${small[@]}"
        derive "$image" small-gray.png "${small[@]}" -pix_fmt gray
        derive "$image" small-rgba.png -vf scale=48:32,format=rgba -frames:v 1
        derive "$image" small.jpg "${small[@]}" -q:v 8
        derive "$image" small-gray.jpg "${small[@]}" -pix_fmt gray -q:v 8
        derive "$image" small.gif "${small[@]}"
        derive "$image" small.bmp "${small[@]}"
        derive "$image" small.tiff "${small[@]}"
        derive "$image" small.webp "${small[@]}" -c:v libwebp -quality 50
        derive "$image" small-lossless.webp "${small[@]}" -c:v libwebp -lossless 1
        ;;
    audio)
        # Four seconds: just above the three the fingerprint needs.
        local short=(-t 4 -ac 1 -ar 8000)
        derive "$sound" short.wav "${short[@]}"
        derive "$sound" short.flac "${short[@]}"
        derive "$sound" short.mp3 "${short[@]}" -b:a 32k
        derive "$sound" short.m4a "${short[@]}" -c:a aac -b:a 24k
        derive "$sound" short.ogg "${short[@]}" -c:a libvorbis -q:a 0
        derive "$sound" short-stereo.ogg -t 4 -ac 2 -ar 22050 -c:a libvorbis -q:a 0
        ;;
    video)
        # Tiny pictures and four seconds of sound, in the profiles we decode.
        local tiny=(-t 4 -vf scale=128:72 -r 10 -c:a aac -ac 1 -ar 8000 -b:a 24k)
        derive "$clip" tiny-high.mp4 "${tiny[@]}" -c:v libx264 -profile:v high -bf 3 -crf 35
        derive "$clip" tiny-main.mov "${tiny[@]}" -c:v libx264 -profile:v main -crf 35
        derive "$clip" tiny-baseline.mp4 "${tiny[@]}" -c:v libx264 -profile:v baseline -crf 35
        derive "$clip" tiny-silent.mp4 -t 2 -vf scale=64:36 -r 5 -an -c:v libx264 -crf 40
        ;;
    esac
}

seed_corpus() {
    mkdir -p "$corpus"
    if [ -n "$(ls -A "$corpus")" ]; then
        return 0
    fi
    [ -d "$media" ] || {
        echo "no shared media at $media (set MEDIA_DIR): starting from an empty corpus" >&2
        return 0
    }
    echo "seeding $corpus from $media" >&2
    case "$target" in
    image) copy_media images png jpg jpeg webp tiff gif bmp ;;
    audio) copy_media audio wav flac mp3 m4a ogg ;;
    video) copy_media video mp4 mov ;;
    sniff_exact)
        # The target reads a header byte before the stream (low 4 bits: how
        # many little-endian u16 chunk sizes follow; high 4 bits: which
        # declared type). Each file's first 256 KiB, once fed whole and once
        # in chunks that straddle the hasher's 64 KiB batches.
        local file name
        for file in "$media"/images/* "$media"/audio/* "$media"/video/*; do
            case "$file" in *.md) continue ;; esac
            name=$(basename "$file")
            { printf '\000'; head -c 262144 "$file"; } >"$corpus/whole-$name"
            { printf '\003\001\000\000\020\377\377'; head -c 262144 "$file"; } >"$corpus/chunked-$name"
        done
        ;;
    esac
    derive_seeds
}

seed_corpus

mkdir -p "$fuzz_dir/logs"
log="$fuzz_dir/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "fuzzing $target for ${seconds}s (sanitizer $sanitizer), log in $log" >&2
cd "$crate"
set +e
# No -jobs/-workers: without them libFuzzer runs in this one process (with
# them it forks a worker whose output goes to ./fuzz-N.log instead).
cargo fuzz run --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" \
    -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 \
    -timeout="$timeout" \
    -max_len="$max_len" \
    -print_final_stats=1 \
    "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "$target: exit status $status, $(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1)" >&2
exit "$status"
