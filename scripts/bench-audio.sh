#!/usr/bin/env bash
# Audio fingerprint throughput, ours against fpcalc, on the shared audio files.
#
# Ours: the `audio` bench of media-fingerprint in release mode (decode +
# Chromaprint on one thread, from memory, median of 7 runs per file).
# fpcalc (Debian libchromaprint-tools, over ffmpeg): `fpcalc -raw -length 0`,
# the whole file as we do, median wall time of several runs per file, with
# hyperfine if it is installed, else a loop over /usr/bin/time.
#
# Usage: scripts/bench-audio.sh [audio-dir]   (default: ../shared/media/audio)
# Needs: cargo; fpcalc (apt-get install libchromaprint-tools); optionally
# hyperfine (apt-get install hyperfine).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/../shared/media/audio}"
runs=7

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo
echo "== ours: cargo bench -p media-fingerprint --bench audio -- $dir"
(cd "$root" && cargo bench -q -p media-fingerprint --bench audio -- "$dir")

echo
if ! command -v fpcalc >/dev/null; then
    echo "fpcalc not found: apt-get install libchromaprint-tools"
    exit 0
fi
echo "== fpcalc $(fpcalc -version | sed 's/^fpcalc version //'): fpcalc -raw -length 0 FILE, median of $runs runs"
echo "   (cpu ms: mean user + system time, with hyperfine only)"
printf '%-34s %9s %12s %10s %12s %10s\n' file "audio s" "wall ms" "x realtime" "cpu ms" "x realtime"
# times SECONDS MS: the realtime multiple, or nothing when MS is zero.
times() { awk -v s="$1" -v m="$2" 'BEGIN { if (m > 0) printf "%.0f", s / (m / 1000) }'; }
total_audio=0
total_ms=0
total_cpu_ms=0
for file in "$dir"/*; do
    name="$(basename "$file")"
    # fpcalc prints the duration it decoded. It exits non-zero even when it
    # only complains about the end of the file, so look at what it printed;
    # files it cannot fingerprint are skipped.
    json="$(fpcalc -raw -json -length 0 "$file" 2>/dev/null || true)"
    if ! grep -q '"fingerprint": *\[[0-9]' <<<"$json"; then
        printf '%-34s %9s\n' "$name" "skipped (no fingerprint)"
        continue
    fi
    seconds="$(sed -n 's/.*"duration": *\([0-9.]*\).*/\1/p' <<<"$json")"
    if command -v hyperfine >/dev/null; then
        csv="$(mktemp)"
        # -i: fpcalc exits non-zero after "Error decoding audio frame (End of
        # file)" even though it printed the fingerprint.
        hyperfine -N -i --style none --warmup 1 --runs "$runs" \
            --export-csv "$csv" "fpcalc -raw -length 0 $(printf '%q' "$file")" >/dev/null 2>&1
        # Columns: command,mean,stddev,median,user,system,min,max (seconds).
        ms="$(awk -F, 'NR == 2 { printf "%.2f", $4 * 1000 }' "$csv")"
        cpu_ms="$(awk -F, 'NR == 2 { printf "%.2f", ($5 + $6) * 1000 }' "$csv")"
        rm -f "$csv"
    else
        ms="$(for _ in $(seq "$runs"); do
            /usr/bin/time -f '%e' fpcalc -raw -length 0 "$file" 2>&1 >/dev/null | tail -1
        done | sort -n | awk '{ t[NR] = $1 } END { printf "%.2f", t[int((NR + 1) / 2)] * 1000 }')"
        cpu_ms=""
    fi
    if [ -n "$cpu_ms" ]; then
        printf '%-34s %9.2f %12.2f %10s %12.2f %10s\n' "$name" "$seconds" "$ms" "$(times "$seconds" "$ms")" "$cpu_ms" "$(times "$seconds" "$cpu_ms")"
        total_cpu_ms="$(awk -v a="$total_cpu_ms" -v m="$cpu_ms" 'BEGIN { print a + m }')"
    else
        printf '%-34s %9.2f %12.2f %10s\n' "$name" "$seconds" "$ms" "$(times "$seconds" "$ms")"
    fi
    total_audio="$(awk -v a="$total_audio" -v s="$seconds" 'BEGIN { print a + s }')"
    total_ms="$(awk -v a="$total_ms" -v m="$ms" 'BEGIN { print a + m }')"
done
printf '%-34s %9.2f %12.2f %10s %12.2f %10s\n' "all files" "$total_audio" "$total_ms" "$(times "$total_audio" "$total_ms")" "$total_cpu_ms" "$(times "$total_audio" "$total_cpu_ms")"
