#!/usr/bin/env bash
# Runs ffmpeg's MPEG-7 video signature filter, as an outside reference, over
# video files sampled at 5 fps exactly as iscc-sdk does for the ISCC
# Video-Code (`fps=fps=5,signature`, every frame, no scene detection), and
# writes each file's frame signatures as text: one line per frame, 380 values
# 0/1/2 separated by spaces, to "$OUT_DIR/<file name>.sig.txt".
#
# Only ffmpeg's output is used; its source is not, and must not be.
#
#   scripts/ffmpeg-signature.sh ../shared/media/video/*.mp4
#   OUT_DIR=/tmp/sigs scripts/ffmpeg-signature.sh clip.mp4
#
# Needs ffmpeg (Debian: apt-get install ffmpeg).
set -euo pipefail

out_dir=${OUT_DIR:-/tmp/ffmpeg-signatures}
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for input in "$@"; do
    name=$(basename "$input")
    # The filter's filename option is parsed by the filter graph: a plain
    # temporary path avoids characters it would need escaped.
    xml="$work/signature.xml"
    ffmpeg -nostdin -v error -threads 1 -i "$input" -map 0:v:0 \
        -vf "fps=fps=5,signature=format=xml:filename=$xml" -f null -
    grep -o '<FrameSignature>[^<]*' "$xml" \
        | sed -e 's/<FrameSignature>//' -e 's/  */ /g' -e 's/^ //' -e 's/ $//' \
        > "$out_dir/$name.sig.txt"
    echo "$out_dir/$name.sig.txt: $(wc -l < "$out_dir/$name.sig.txt") frames"
done
