#!/usr/bin/env bash
# Generates the transformed evaluation set from ../shared/media: every image,
# audio file and video clip under the transforms a registry must see through.
#
#   scripts/transformed-set.sh OUT_DIR
#
# Needs ImageMagick 6 or 7 and ffmpeg (Debian: imagemagick ffmpeg). The
# output mirrors the shared folders: OUT_DIR/<transform>/<original file name>.<ext>
# Evaluate with:
#   cargo run --release -p media-fingerprint --example transform_eval -- ../shared/media OUT_DIR
set -euo pipefail
out=${1:?usage: scripts/transformed-set.sh OUT_DIR}
media="$(cd "$(dirname "$0")/../../shared/media" && pwd)"
mkdir -p "$out"

# ImageMagick 7 is `magick`; Debian 12 ships 6 as `convert-im6.q16`.
if command -v magick >/dev/null 2>&1; then im=(magick)
elif command -v convert-im6.q16 >/dev/null 2>&1; then im=(convert-im6.q16)
else echo "ImageMagick is required (apt-get install imagemagick)" >&2; exit 1; fi
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (apt-get install ffmpeg)" >&2; exit 1; }
ff=(ffmpeg -hide_banner -loglevel error -y)

for t in jpeg_q30 resize_25 crop_5 grayscale mp3_64k excerpt_10s reencode_360p; do mkdir -p "$out/$t"; done

for f in "$media"/images/*; do
    name=$(basename "${f%.*}").$(echo "${f##*.}")
    base=$(basename "${f%.*}")
    # The first frame only: GIFs could be animated.
    "${im[@]}" "$f[0]" -quality 30 "$out/jpeg_q30/$name.jpg"
    "${im[@]}" "$f[0]" -resize 25% "$out/resize_25/$name.png"
    # 5 % of each dimension cut away, centred (2.5 % off every side).
    "${im[@]}" "$f[0]" -gravity center -crop 95%x95%+0+0 +repage "$out/crop_5/$name.png"
    "${im[@]}" "$f[0]" -colorspace Gray "$out/grayscale/$name.png"
    : "$base"
done

for f in "$media"/audio/*; do
    name=$(basename "$f")
    "${ff[@]}" -i "$f" -vn -c:a libmp3lame -b:a 64k "$out/mp3_64k/$name.mp3"
    # 10 s from 20 s in (from the start when the file is shorter than 30 s).
    dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")
    start=$(awk -v d="$dur" 'BEGIN { print (d > 30 ? 20 : 0) }')
    "${ff[@]}" -ss "$start" -t 10 -i "$f" -vn -c:a flac "$out/excerpt_10s/$name.start$start.flac"
done

for f in "$media"/video/*; do
    name=$(basename "$f")
    "${ff[@]}" -i "$f" -vf scale=-2:360 -c:v libx264 -crf 30 -c:a aac -b:a 64k "$out/reencode_360p/$name.mp4"
    "${ff[@]}" -ss 5 -t 10 -i "$f" -c:v libx264 -c:a aac "$out/excerpt_10s/$name.start5.mp4"
done
echo "transformed set written to $out"
