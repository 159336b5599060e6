#!/usr/bin/env bash
# Video fingerprint throughput, ours against ffmpeg's signature filter, on the
# 720p shared clips; then peak memory of ours on a 2 GB video.
#
# Ours: the `video` bench of media-fingerprint in release mode (demux, H.264
# decode with openh264, 5 fps frame signatures; one thread, from memory,
# median of 5 runs per clip).
# ffmpeg (Debian ffmpeg): `ffmpeg -threads 1 -filter_threads 1 -i CLIP
# -map 0:v:0 -vf fps=fps=5,signature=format=binary:filename=... -f null -`,
# the same sampling iscc-sdk uses; median wall time of 5 runs per clip.
# Peak RSS: `/usr/bin/time -v` around the bench binary fingerprinting one
# long file from disk (`--file`). The file is made once with ffmpeg under
# /tmp, never in the repository: clip_a_720p_high.mp4 looped to 2 minutes
# and re-encoded (x264 High profile with B-frames, qp 2, about 24 Mbit/s),
# then looped 6 times by stream copy: 12 minutes, 2.2 GB.
#
# Usage: scripts/bench-video.sh [video-dir] [long-video]
#   (defaults: ../shared/media/video and /tmp/provreg-video-2g.mp4)
# Needs: cargo; ffmpeg (apt-get install ffmpeg); GNU time (apt-get install
# time). openh264 uses its assembly only when nasm is installed at build
# time (apt-get install nasm); without it decoding is about a third slower.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/../shared/media/video}"
long="${2:-/tmp/provreg-video-2g.mp4}"
runs=5

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
command -v nasm >/dev/null && echo "nasm: $(nasm -v)" || echo "nasm: not installed (openh264 built without assembly)"
echo
echo "== ours: cargo bench -p media-fingerprint --bench video -- $dir"
(cd "$root" && cargo bench -q -p media-fingerprint --bench video -- "$dir")

echo
if ! command -v ffmpeg >/dev/null; then
    echo "ffmpeg not found: apt-get install ffmpeg"
    exit 0
fi
echo "== $(ffmpeg -version | head -1 | cut -d' ' -f1-3): signature filter at 5 fps, -threads 1, median of $runs runs"
# CPU seconds (user + system) are printed beside wall time for both: on a
# shared, loaded machine they are the steadier figure.
bench="$(cd "$root" && cargo bench -q -p media-fingerprint --bench video --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)"
printf '%-34s %9s %12s %10s %12s %10s %12s %10s\n' file "video s" "ffmpeg ms" "x realtime" \
    "ffmpeg cpu" "x realtime" "ours cpu" "x realtime"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
median() { sort -n | sed -n "$(( runs / 2 + 1 ))p"; }
for clip in "$dir"/*720p*.mp4; do
    name="$(basename "$clip")"
    seconds="$(ffprobe -v error -select_streams v:0 -show_entries format=duration -of csv=p=0 "$clip")"
    : > "$work/ffmpeg.txt"
    : > "$work/ours.txt"
    for _ in $(seq "$runs"); do
        /usr/bin/time -a -o "$work/ffmpeg.txt" -f '%e %U %S' \
            ffmpeg -nostdin -v error -threads 1 -filter_threads 1 -i "$clip" -map 0:v:0 \
            -vf "fps=fps=5,signature=format=binary:filename=$work/sig.bin" -f null -
        /usr/bin/time -a -o "$work/ours.txt" -f '%e %U %S' "$bench" --file "$clip" >/dev/null
    done
    wall="$(awk '{ print $1 * 1000 }' "$work/ffmpeg.txt" | median)"
    cpu="$(awk '{ print $2 + $3 }' "$work/ffmpeg.txt" | median)"
    ours="$(awk '{ print $2 + $3 }' "$work/ours.txt" | median)"
    awk -v n="$name" -v s="$seconds" -v ms="$wall" -v c="$cpu" -v o="$ours" \
        'BEGIN { printf "%-34s %9.1f %12.1f %10.1f %12.2f %10.1f %12.2f %10.1f\n", n, s, ms, s / (ms / 1000), c, s / c, o, s / o }'
done

echo
if [ ! -f "$long" ]; then
    echo "== making $long (2 minutes of clip a at qp 2, looped 6 times by stream copy)"
    ffmpeg -nostdin -v error -y -stream_loop 5 -i "$dir/clip_a_720p_high.mp4" \
        -c:a copy -c:v libx264 -preset superfast -bf 3 -qp 2 "$work/segment.mp4"
    ffmpeg -nostdin -v error -y -stream_loop 5 -i "$work/segment.mp4" -c copy "$long"
fi
echo "== peak RSS of ours on $long ($(du -h "$long" | cut -f1))"
/usr/bin/time -v "$bench" --file "$long" 2> "$work/time.txt"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/time.txt"
