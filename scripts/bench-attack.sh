#!/usr/bin/env bash
# Honest throughput under attack: one provreg node (release build, SQLite,
# a fresh data dir) serves honest, authenticated clients on 127.0.0.1 first
# alone, then while hostile clients on 127.0.0.2-127.0.0.9 attack it, and
# the two are set side by side with the node's peak memory, open files and
# threads.
#
# - Honest load: provreg-bench --mode proofs (service/src/bin/provreg-bench.rs),
#   HONEST_WRITERS clients registering distinct 200-byte files beside
#   HONEST_READERS clients fetching inclusion proofs of the receipts from
#   its warm-up, with the operator token, each request given up after
#   HONEST_TIMEOUT seconds (counted as a `timeout` error).
# - Attacks: scripts/attack/attack.py, one process per attack and source
#   address, all at once, starting ATTACK_RAMP seconds before the honest
#   load and stopped when it ends (see that file for what each one sends):
#     127.0.0.2 slow-body       300 request heads, then the body at 1 byte/s
#     127.0.0.3 idle            2,500 connections that send nothing
#     127.0.0.4 header-drip     300 request heads at 1 byte/s, never ending
#     127.0.0.5 multipart-open  16 multipart bodies without their boundary,
#                               up to 512 MiB each, as fast as read
#     127.0.0.6 multipart-head  16 multipart bodies whose part header never
#                               ends, the same way
#     127.0.0.7 png-bomb        4 connections sending a 10000x10000 RGBA PNG
#                               of one colour (400 KB, 400 MB decoded), again
#                               and again
#     127.0.0.8 flac-bomb       4 connections sending three hours of silent
#                               FLAC (1.9 MB), again and again
#     127.0.0.9 idle            2,500 more idle connections (a cap per
#                               address must not be the only bound)
#   all to POST /v1/content/match, which needs no token.
# - The node is sampled every 0.5 s (VmRSS, VmHWM, threads, open fds from
#   /proc) and killed if its RSS passes RSS_KILL_MB, which is reported.
#
# Targets: the attacked registrations keep at least 40 % of the baseline's
# registrations per second, the node's peak RSS stays under 1 GiB, and no
# honest request times out. The exit status is 0 when all three hold, 3 when
# the run completed but one did not, anything else when the run failed.
#
# Usage: scripts/bench-attack.sh
# Environment:
#   BENCH_DURATION   seconds measured per phase (default 30)
#   BENCH_WARMUP     seconds of unmeasured honest writes first (default 3)
#   ATTACK_RAMP      seconds the attacks run before the honest load (default 5)
#   HONEST_WRITERS   honest registering clients (default 16)
#   HONEST_READERS   honest proof-reading clients (default 16)
#   HONEST_TIMEOUT   seconds before an honest request counts as timed out
#                    (default 10)
#   ATTACKS          which attacks, as words ATTACK@SOURCE[=CONNECTIONS]
#                    (default: the list above)
#   NODE_FLAGS       extra flags for `provreg serve`, e.g. new limits
#   RSS_KILL_MB      kill the node past this RSS (default 6144)
#   BENCH_PORT       the node's API port (default: a free one)
#   BENCH_BUILD      0 to use the binaries already built (default 1)
#   BENCH_RESULTS    where the JSON results go (default: a new temp dir,
#                    kept and named at the end)
#   BENCH_REVISION   what to call the build in the header (default: the
#                    checkout's commit)
#   CARGO_TARGET_DIR where the release build goes (default: target-release
#                    beside the checkout)
# Needs: cargo, curl, jq, python3 (3.11, standard library only).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${BENCH_DURATION:-30}"
warmup="${BENCH_WARMUP:-3}"
ramp="${ATTACK_RAMP:-5}"
writers="${HONEST_WRITERS:-16}"
readers="${HONEST_READERS:-16}"
honest_timeout="${HONEST_TIMEOUT:-10}"
rss_kill_mb="${RSS_KILL_MB:-6144}"
attacks="${ATTACKS:-slow-body@127.0.0.2 idle@127.0.0.3 header-drip@127.0.0.4 multipart-open@127.0.0.5 multipart-head@127.0.0.6 png-bomb@127.0.0.7 flac-bomb@127.0.0.8 idle@127.0.0.9}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$root")/target-release}"
provreg="$CARGO_TARGET_DIR/release/provreg"
bench="$CARGO_TARGET_DIR/release/provreg-bench"
attacker="$root/scripts/attack/attack.py"
read -ra node_flags <<<"${NODE_FLAGS:-}"

for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "python3 must be 3.11 or newer" >&2; exit 1; }

if [ "${BENCH_BUILD:-1}" != 0 ]; then
    echo "== building (release)"
    (cd "$root" && nice -n 10 cargo build --release -p service --bins)
fi
for bin in "$provreg" "$bench"; do
    [ -x "$bin" ] || { echo "$bin is missing; build it or unset BENCH_BUILD" >&2; exit 1; }
done

# Every connection is a file descriptor, on both sides: take the hard limit
# (the attackers and the node inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 16384 ]; then
    echo "warning: ulimit -n is $(ulimit -n); the idle attacks may be cut short by it" >&2
fi

port="${BENCH_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
if ss -Hltn "sport = :$port" | grep -q .; then
    echo "port $port is in use; set BENCH_PORT to another" >&2
    exit 1
fi
api="http://127.0.0.1:$port"

work="$(mktemp -d -t provreg-attack.XXXXXX)"
results="${BENCH_RESULTS:-$(mktemp -d -t provreg-attack-results.XXXXXX)}"
mkdir -p "$results"
node_pid=""
sampler_pid=""
attacker_pids=()

# Every process started here is stopped on any exit, by its own pid.
stop_attackers() {
    local pid
    for pid in "${attacker_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # They print their summaries and exit within a second or two; a stuck
    # one is killed.
    for _ in $(seq 1 100); do
        local alive=0
        for pid in "${attacker_pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${attacker_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    attacker_pids=()
}
stop_sampler() {
    if [ -n "$sampler_pid" ]; then
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
    fi
}
cleanup() {
    stop_attackers
    stop_sampler
    if [ -n "$node_pid" ]; then
        kill "$node_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$node_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    [ -f "$work/node.log" ] && cp "$work/node.log" "$results/node.log" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sample PHASE: in the background, every 0.1 s, kills the node if its RSS
# passes the limit (noting it in $results/node-killed.txt); every 0.5 s
# appends "seconds VmRSS_kB VmHWM_kB threads fds" to $work/PHASE.samples.
# Bash builtins only, so that the sampling itself costs next to nothing.
sample() {
    local phase="$1" out="$work/$1.samples" tick=0 start=$SECONDS
    local key value rest rss hwm threads fds
    : > "$out"
    while kill -0 "$node_pid" 2>/dev/null; do
        rss=0 hwm=0 threads=0
        while read -r key value rest; do
            case "$key" in
            VmRSS:) rss="$value" ;;
            VmHWM:) hwm="$value" ;;
            Threads:) threads="$value" ;;
            esac
        done 2>/dev/null < "/proc/$node_pid/status" || break
        if [ "$rss" -gt $((rss_kill_mb * 1024)) ]; then
            kill -KILL "$node_pid" 2>/dev/null || true
            echo "$phase: killed at ${rss} kB RSS, $((SECONDS - start)) s into the phase" \
                >> "$results/node-killed.txt"
            echo "$((SECONDS - start)) $rss $hwm $threads 0" >> "$out"
            break
        fi
        if [ $((tick % 5)) = 0 ]; then
            fds=(/proc/"$node_pid"/fd/*)
            echo "$((SECONDS - start)) $rss $hwm $threads ${#fds[@]}" >> "$out"
        fi
        tick=$((tick + 1))
        sleep 0.1
    done
}

# peaks PHASE: the phase's samples as JSON peaks, with the node's CPU
# seconds over the phase.
peaks() {
    local cpu
    cpu="$(cat "$work/$1.cpu" 2>/dev/null || echo null)"
    awk -v cpu="$cpu" '{ if ($2 > r) r = $2; if ($3 > h) h = $3; if ($4 > t) t = $4; if ($5 > f) f = $5; n++ }
        END { printf "{\"samples\": %d, \"peak_rss_mb\": %.1f, \"peak_hwm_mb\": %.1f, \"peak_threads\": %d, \"peak_fds\": %d, \"cpu_s\": %s}\n",
              n, r / 1024, h / 1024, t, f, cpu }' "$work/$1.samples"
}

# cpu_ticks: user + system CPU time of the node so far, in clock ticks (0
# once it is gone).
cpu_ticks() {
    local fields
    read -ra fields 2>/dev/null < "/proc/$node_pid/stat" || { echo 0; return; }
    # Fields 14 and 15 (utime, stime), counted after the ')' that ends the
    # command name; provreg's has no spaces.
    echo $((fields[13] + fields[14]))
}

# phase_cpu PHASE BEFORE: writes the node's CPU seconds since BEFORE ticks
# (null if the node is gone).
phase_cpu() {
    local after
    after="$(cpu_ticks)"
    if [ "$after" = 0 ]; then
        echo null > "$work/$1.cpu"
        return
    fi
    awk -v t="$((after - $2))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }' > "$work/$1.cpu"
}

# honest PHASE: the honest load, its report in $results/PHASE-honest.json
# (or a report of why provreg-bench failed).
honest() {
    local phase="$1" out="$results/$1-honest.json"
    if ! "$bench" --json --mode proofs --clients "$writers" --readers "$readers" \
        --duration "$duration" --warmup "$warmup" --timeout "$honest_timeout" \
        --node "$api=$token" > "$out" 2> "$work/$phase-bench.err"; then
        # Under attack the warm-up may register nothing, and provreg-bench
        # then has nothing to read: that is a result (no honest request
        # succeeded), not a broken run. Its message names the warm-up's
        # errors, timeouts among them.
        local error warmup_errors
        error="$(grep -m1 '^Error:' "$work/$phase-bench.err" || tail -1 "$work/$phase-bench.err")"
        warmup_errors="$(sed -n 's/.*(errors: \({.*}\)).*/\1/p' <<<"$error")"
        jq -e . <<<"$warmup_errors" > /dev/null 2>&1 || warmup_errors='{}'
        jq -n --arg error "$error" --argjson warmup_errors "$warmup_errors" \
            '{failed: true, error: $error, warmup_errors: $warmup_errors, groups: []}' > "$out"
        echo "   provreg-bench failed: $error"
        return
    fi
    jq -r '"   " + ([.groups[] | "\(.name) \(.ok_per_s)/s p50 \(.p50_ms) p99 \(.p99_ms) max \(.max_ms) ms errors \(.errors)"] | join("; "))' "$out"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -h | awk '/^Mem:/ {print $2}') RAM, ulimit -n $(ulimit -n)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
revision="${BENCH_REVISION:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '(no git)')}"
echo "provreg $revision, node flags: ${NODE_FLAGS:-(defaults)}"
echo "honest: $writers writers + $readers proof readers, $duration s after $warmup s of warm-up, timeout $honest_timeout s"

echo "== bomb files"
python3 "$attacker" --make-files "$work/bombs" | jq -c .

echo "== node on $api"
"$provreg" serve --listen "127.0.0.1:$port" --data-dir "$work/node" "${node_flags[@]}" \
    > "$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 300); do
    curl -s -o /dev/null --max-time 1 "$api/v1/health" && break
    kill -0 "$node_pid" 2>/dev/null || { echo "the node exited:" >&2; tail "$work/node.log" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null --max-time 1 "$api/v1/health" || { echo "the node did not answer in 30 s" >&2; exit 1; }
token="$(cat "$work/node/operator.token")"

# --- phase 1: baseline --------------------------------------------------------
echo "== baseline: honest load alone"
sample baseline &
sampler_pid=$!
before="$(cpu_ticks)"
honest baseline
phase_cpu baseline "$before"
stop_sampler

# --- phase 2: under attack ----------------------------------------------------
echo "== attacked: the same honest load while $(wc -w <<<"$attacks") attackers run"
# The attackers outlast the honest load (its warm-up, its duration, and
# requests in flight at the end) and are stopped when it ends.
attack_s=$((ramp + ${warmup%.*} + ${duration%.*} + ${honest_timeout%.*} + 30))
sample attacked &
sampler_pid=$!
before="$(cpu_ticks)"
for spec in $attacks; do
    name="${spec%%@*}"
    rest="${spec#*@}"
    source="${rest%%=*}"
    conns=()
    [ "$rest" != "$source" ] && conns=(--connections "${rest#*=}")
    # At the lowest priority: the attackers stand for other machines, so
    # their own CPU must not be taken from the node and its honest
    # clients, only what the node spends on them.
    nice -n 19 python3 "$attacker" --target "127.0.0.1:$port" --source "$source" --duration "$attack_s" \
        --cache-dir "$work/bombs" "$name" "${conns[@]}" \
        > "$work/attack-$name-$source.json" 2> "$work/attack-$name-$source.err" &
    attacker_pids+=($!)
done
sleep "$ramp"
echo "   after ${ramp} s of attack: node $(tail -1 "$work/attacked.samples" 2>/dev/null |
    awk '{ printf "RSS %.0f MB, %d threads, %d fds", $2 / 1024, $4, $5 }')"
honest attacked
node_alive=false
if kill -0 "$node_pid" 2>/dev/null; then
    node_alive=true
fi
phase_cpu attacked "$before"
stop_attackers
stop_sampler
# Whether the node still answers once the attackers are gone.
health_after="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api/v1/health" || true)"

# --- the report ---------------------------------------------------------------
attack_reports=()
for spec in $attacks; do
    name="${spec%%@*}"
    rest="${spec#*@}"
    source="${rest%%=*}"
    f="$work/attack-$name-$source.json"
    if ! jq -e . "$f" > /dev/null 2>&1; then
        jq -n --arg a "$name" --arg s "$source" --rawfile err "$work/attack-$name-$source.err" \
            '{attack: $a, source: $s, failed: true, error: $err}' > "$f"
    fi
    cp "$f" "$results/"
    attack_reports+=("$f")
done
killed="$(cat "$results/node-killed.txt" 2>/dev/null || true)"
jq -n \
    --arg revision "$revision" --arg node_flags "${NODE_FLAGS:-}" \
    --argjson duration "$duration" --argjson warmup "$warmup" --argjson ramp "$ramp" \
    --argjson timeout "$honest_timeout" --argjson rss_kill_mb "$rss_kill_mb" \
    --slurpfile base "$results/baseline-honest.json" --slurpfile att "$results/attacked-honest.json" \
    --argjson base_node "$(peaks baseline)" --argjson att_node "$(peaks attacked)" \
    --argjson alive "$node_alive" --arg health_after "$health_after" --arg killed "$killed" \
    --slurpfile attacks <(cat "${attack_reports[@]}") '
    def group($r; $g): ($r.groups // []) | map(select(.name == $g)) | .[0] // {ok_per_s: 0, p99_ms: null, errors: {}};
    def timeouts($r): ([($r.groups // [])[] | .errors.timeout // 0] | add // 0) + ($r.warmup_errors.timeout // 0);
    (group($base[0]; "writes").ok_per_s) as $bw
    | (group($att[0]; "writes").ok_per_s) as $aw
    | {revision: $revision, node_flags: $node_flags, duration_s: $duration, warmup_s: $warmup,
       attack_ramp_s: $ramp, honest_timeout_s: $timeout, rss_kill_mb: $rss_kill_mb,
       baseline: {honest: $base[0], node: $base_node},
       attacked: {honest: $att[0], node: ($att_node + {alive_at_end: $alive,
                  health_after: $health_after, killed: (if $killed == "" then null else $killed end)})},
       attacks: $attacks,
       targets: {
         writes_ratio: (if $bw > 0 then ($aw / $bw * 1000 | round / 1000) else null end),
         writes_keep_40_percent: ($bw > 0 and $aw >= 0.4 * $bw),
         peak_rss_mb: ([$base_node.peak_rss_mb, $att_node.peak_rss_mb, $att_node.peak_hwm_mb] | max),
         rss_under_1_gib: ([$base_node.peak_rss_mb, $att_node.peak_rss_mb, $att_node.peak_hwm_mb] | max < 1024
                           and $killed == ""),
         honest_timeouts: (timeouts($att[0]) + timeouts($base[0])),
         bench_failed: (($att[0].failed // false) or ($base[0].failed // false)),
         no_honest_timeouts: (timeouts($att[0]) + timeouts($base[0]) == 0
                              and ($att[0].failed | not) and ($base[0].failed | not))}}
    | .targets.held = (.targets.writes_keep_40_percent and .targets.rss_under_1_gib and .targets.no_honest_timeouts)
    ' > "$results/attack-bench.json"

r="$results/attack-bench.json"
echo
echo "== honest clients ($duration s per phase, timeout $honest_timeout s)"
printf '%-9s %-7s %7s %9s %9s %9s %9s  %s\n' phase group clients ok/s p50_ms p99_ms max_ms errors
jq -r '[["baseline", .baseline.honest], ["attacked", .attacked.honest]][] | .[0] as $p | .[1] as $h
    | if $h.failed then [$p, "-", "-", "0", "-", "-", "-", "provreg-bench failed: " + ($h.error | split("\n") | map(select(. != "")) | last // "")]
      else ($h.groups[] | [$p, .name, .clients, .ok_per_s, .p50_ms, .p99_ms, .max_ms,
            ((.errors | tostring) + (if .name == "writes" and (($h.warmup_errors // {}) | length) > 0
                                     then " (warm-up: " + ($h.warmup_errors | tostring) + ")" else "" end))]) end
    | map(tostring) | @tsv' "$r" | while IFS=$'\t' read -r p g c ops p50 p99 max errs; do
    printf '%-9s %-7s %7s %9s %9s %9s %9s  %s\n' "$p" "$g" "$c" "$ops" "$p50" "$p99" "$max" "$errs"
done
echo
echo "== node (sampled every 0.5 s; CPU seconds over the phase, attack ramp included)"
printf '%-9s %12s %12s %12s %10s %8s\n' phase peak_rss_mb vm_hwm_mb peak_threads peak_fds cpu_s
jq -r '["baseline", .baseline.node], ["attacked", .attacked.node] | [.[0], .[1].peak_rss_mb, .[1].peak_hwm_mb, .[1].peak_threads, .[1].peak_fds, .[1].cpu_s] | @tsv' "$r" |
    while IFS=$'\t' read -r p rss hwm t f c; do
        printf '%-9s %12s %12s %12s %10s %8s\n' "$p" "$rss" "$hwm" "$t" "$f" "$c"
    done
jq -r '.attacked.node | "node alive at the end of the attack: \(.alive_at_end), /v1/health after: \(.health_after)" + (if .killed then "; KILLED: \(.killed)" else "" end)' "$r"
echo
echo "== attackers"
printf '%-15s %-10s %6s %7s %5s %8s %9s %6s  %s\n' attack source conns opened peak answered sent_MB cpu_s "ended by / connect errors"
jq -r '.attacks[] | if .failed then [.attack, .source, "-", "-", "-", "-", "-", "-", "failed: " + .error] else
    [.attack, .source, .connections, .opened, .peak_open, .answered, (.bytes_sent / 1048576 * 10 | round / 10), .attacker_cpu_s,
     ((.ended_by | to_entries | map("\(.key) \(.value)") | join(", "))
      + (if (.connect_errors | length) > 0 then " / " + (.connect_errors | to_entries | map("\(.key) \(.value)") | join(", ")) else "" end)
      + (if .answer_s.p50 then " / answer p50 \(.answer_s.p50) s max \(.answer_s.max) s" else "" end))] end
    | map(tostring) | @tsv' "$r" | while IFS=$'\t' read -r a s c o pk an mb cpu rest; do
    printf '%-15s %-10s %6s %7s %5s %8s %9s %6s  %s\n' "$a" "$s" "$c" "$o" "$pk" "$an" "$mb" "$cpu" "$rest"
done
jq -r --arg cores "$(nproc)" '"CPU over the attacked phase, on \($cores) cores: the attackers \([.attacks[].attacker_cpu_s // 0] | add * 100 | round / 100) s in all, the node \(.attacked.node.cpu_s) s"' "$r"
echo
jq -r '.targets | "== targets: registrations kept \(if .writes_ratio then (.writes_ratio * 100 | round | tostring) + " %" else "-" end) of baseline (>= 40 %): \(if .writes_keep_40_percent then "held" else "MISSED" end); peak RSS \(.peak_rss_mb) MB (< 1024): \(if .rss_under_1_gib then "held" else "MISSED" end); honest timeouts \(.honest_timeouts) (0)\(if .bench_failed then ", provreg-bench failed" else "" end): \(if .no_honest_timeouts then "held" else "MISSED" end)"' "$r"
echo "results: $results"
jq -e '.targets.held' "$r" > /dev/null || exit 3
