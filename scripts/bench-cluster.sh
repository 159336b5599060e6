#!/usr/bin/env bash
# Cluster write and read throughput: provreg with 3 nodes and with 1 node,
# beside a 3-member etcd cluster, all driven by the same load generator
# (provreg-bench, service/src/bin/provreg-bench.rs) on this machine.
#
# - provreg, 3 nodes on loopback, each its own process and data dir (fsync
#   on, the default): single 200-byte registrations at 16, 64 and 256
#   clients spread over the nodes; hash-only registrations in batches of
#   1,000 by 8 clients; linearizable lookups by 64 readers alone; then by 64
#   readers while 64 writers register.
# - provreg, 1 node without cluster flags: registrations at 1, 16 and 64
#   clients, and in batches of 1,000 by 8 clients.
# - etcd, 3 members on loopback (fsync on, the default): 200-byte puts under
#   unique keys at 16, 64 and 256 clients through the v3 JSON gateway,
#   linearizable ranges by 64 readers alone, then by 64 readers while 64
#   writers put.
#
# Besides throughput and latency the table gives the CPU time the busiest
# server process (the leader) and all server processes spent per operation,
# from /proc, and the load generator's own CPU time.
#
# Usage: scripts/bench-cluster.sh
# Environment:
#   BENCH_DURATION   seconds measured per run (default 20)
#   BENCH_WARMUP     seconds of unmeasured writes before each run (default 3)
#   BENCH_PORT_BASE  first of the loopback ports used (default 27000; the
#                    runs use BASE+1..3, +81..83, +90, +301..303, +401..403)
#   BENCH_RESULTS    a directory to keep each run's JSON report in
#   BENCH_REVISION   what to call the build in the header (default: the
#                    checkout's commit)
#   CARGO_TARGET_DIR where the release build goes (default: target-release
#                    beside the checkout, so it never locks the development
#                    build's target dir)
# Needs: cargo, curl, jq; etcd and etcdctl (Debian: apt-get install
# etcd-server etcd-client, done here when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${BENCH_DURATION:-20}"
warmup="${BENCH_WARMUP:-3}"
base="${BENCH_PORT_BASE:-27000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$root")/target-release}"
provreg="$CARGO_TARGET_DIR/release/provreg"
bench="$CARGO_TARGET_DIR/release/provreg-bench"

for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client >/dev/null
    else
        echo "etcd and etcdctl are needed: apt-get install etcd-server etcd-client" >&2
        exit 1
    fi
fi

echo "== building (release)"
(cd "$root" && nice -n 10 cargo build --release --bin provreg --bin provreg-bench)

for port in $((base + 1)) $((base + 2)) $((base + 3)) $((base + 81)) $((base + 82)) \
    $((base + 83)) $((base + 90)) $((base + 301)) $((base + 302)) $((base + 303)) \
    $((base + 401)) $((base + 402)) $((base + 403)); do
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "port $port is in use; set BENCH_PORT_BASE to another range" >&2
        exit 1
    fi
done

work="$(mktemp -d -t provreg-bench.XXXXXX)"
results="$work/results"
mkdir -p "$results"
pids=()

# Every server started here is stopped on any exit, by its own pid.
stop_servers() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    stop_servers
    if [ -n "${BENCH_RESULTS:-}" ]; then
        mkdir -p "$BENCH_RESULTS" && cp "$results"/*.json "$BENCH_RESULTS"/ 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until an HTTP URL answers at all.
wait_http() {
    local url="$1" i
    for i in $(seq 1 300); do
        if curl -s -o /dev/null "$url"; then
            return 0
        fi
        sleep 0.1
    done
    echo "$url did not answer in 30 s" >&2
    exit 1
}

# User + system CPU time of processes, in clock ticks.
cpu_ticks() {
    local pid total=0 fields
    for pid in "$@"; do
        read -ra fields < "/proc/$pid/stat"
        # Fields 14 and 15 (utime, stime), counted after the ')' that ends
        # the command name; provreg's and etcd's names have no spaces.
        total=$((total + fields[13] + fields[14]))
    done
    echo "$total"
}

# run NAME LEADER_PID "SERVER_PIDS" BENCH-ARGS...: one provreg-bench run, its
# JSON report in $results/NAME.json with the CPU figures added.
run() {
    local name="$1" leader="$2" servers="$3"
    shift 3
    local hz before_leader before_all after_leader after_all report
    hz="$(getconf CLK_TCK)"
    # The warm-up writes too; CPU is counted over the whole run and divided
    # by everything written and read, warm-up included.
    before_leader="$(cpu_ticks "$leader")"
    # shellcheck disable=SC2086 # the pids are words on purpose
    before_all="$(cpu_ticks $servers)"
    local TIMEFORMAT='%U %S'
    if ! { time "$bench" --json --duration "$duration" --warmup "$warmup" "$@" \
        > "$work/out.json" 2> "$work/bench.err"; } 2> "$work/time.txt"; then
        echo "provreg-bench failed in $name:" >&2
        cat "$work/bench.err" >&2
        exit 1
    fi
    after_leader="$(cpu_ticks "$leader")"
    # shellcheck disable=SC2086
    after_all="$(cpu_ticks $servers)"
    report="$(jq -c --arg name "$name" --argjson hz "$hz" \
        --argjson leader "$((after_leader - before_leader))" \
        --argjson all "$((after_all - before_all))" \
        --arg bench_cpu "$(tail -1 "$work/time.txt")" '
        (([.groups[].ok] | add) + .warmup_written) as $ops
        | . + {name: $name,
               leader_cpu_s: ($leader / $hz),
               servers_cpu_s: ($all / $hz),
               bench_cpu_s: ($bench_cpu | split(" ") | map(tonumber) | add),
               ops_incl_warmup: $ops,
               leader_cpu_ms_per_op: (if $ops > 0 then $leader / $hz * 1000 / $ops else null end),
               servers_cpu_ms_per_op: (if $ops > 0 then $all / $hz * 1000 / $ops else null end)}' \
        "$work/out.json")"
    echo "$report" > "$results/$name.json"
    echo "$report" | jq -r '"   \(.name): " + ([.groups[] | "\(.name) \(.ok_per_s)/s p50 \(.p50_ms) p99 \(.p99_ms) max \(.max_ms) ms errors \(.errors)"] | join("; "))'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -h | awk '/^Mem:/ {print $2}') RAM"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "provreg ${BENCH_REVISION:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '(no git)')}, $(etcd --version | head -1)"
echo "$duration s measured per run after $warmup s of warm-up"

# --- provreg, 3 nodes -------------------------------------------------------
echo "== provreg, 3 nodes"
openssl rand -hex 32 > "$work/cluster.secret"
chmod 600 "$work/cluster.secret"
declare -A node_pid
for i in 1 2 3; do
    join=()
    [ "$i" = 1 ] || join=(--join)
    "$provreg" serve --node-id "$i" --listen "127.0.0.1:$((base + 80 + i))" \
        --data-dir "$work/n$i" --peer-listen "127.0.0.1:$((base + i))" \
        --advertise "http://127.0.0.1:$((base + i))" \
        --cluster-secret-file "$work/cluster.secret" "${join[@]}" \
        > "$work/n$i.log" 2>&1 &
    pids+=($!)
    node_pid[$i]=$!
done
for i in 1 2 3; do
    wait_http "http://127.0.0.1:$((base + 80 + i))/v1/health"
done
t1="$(cat "$work/n1/operator.token")"
api1="http://127.0.0.1:$((base + 81))"
for i in 2 3; do
    curl -sf -X POST "$api1/v1/cluster/learners" -H "Authorization: Bearer $t1" \
        -H 'Content-Type: application/json' \
        -d "{\"node_id\": $i, \"address\": \"http://127.0.0.1:$((base + i))\"}" > /dev/null
done
curl -sf -X POST "$api1/v1/cluster/membership" -H "Authorization: Bearer $t1" \
    -H 'Content-Type: application/json' -d '{"voters": [1, 2, 3]}' > /dev/null
status="$(curl -sf "$api1/v1/cluster/status")"
leader="$(echo "$status" | jq -r .leader_id)"
echo "   voters $(echo "$status" | jq -c .voters), leader node $leader"
nodes=()
for i in 1 2 3; do
    nodes+=(--node "http://127.0.0.1:$((base + 80 + i))=$(cat "$work/n$i/operator.token")")
done
servers="${node_pid[1]} ${node_pid[2]} ${node_pid[3]}"
for c in 16 64 256; do
    run "provreg3-upload-$c" "${node_pid[$leader]}" "$servers" --mode upload --clients "$c" "${nodes[@]}"
done
run provreg3-batch-8 "${node_pid[$leader]}" "$servers" --mode upload --clients 8 --batch 1000 "${nodes[@]}"
run provreg3-read-64 "${node_pid[$leader]}" "$servers" --mode read --clients 64 "${nodes[@]}"
run provreg3-mixed-64 "${node_pid[$leader]}" "$servers" --mode mixed --clients 64 --readers 64 "${nodes[@]}"
stop_servers

# --- provreg, 1 node --------------------------------------------------------
echo "== provreg, 1 node"
"$provreg" serve --listen "127.0.0.1:$((base + 90))" --data-dir "$work/single" \
    > "$work/single.log" 2>&1 &
pids+=($!)
single_pid=$!
wait_http "http://127.0.0.1:$((base + 90))/v1/health"
single=(--node "http://127.0.0.1:$((base + 90))=$(cat "$work/single/operator.token")")
for c in 1 16 64; do
    run "provreg1-upload-$c" "$single_pid" "$single_pid" --mode upload --clients "$c" "${single[@]}"
done
run provreg1-batch-8 "$single_pid" "$single_pid" --mode upload --clients 8 --batch 1000 "${single[@]}"
stop_servers

# --- etcd, 3 members --------------------------------------------------------
echo "== etcd, 3 members"
initial=""
for i in 1 2 3; do
    initial+="${initial:+,}e$i=http://127.0.0.1:$((base + 400 + i))"
done
declare -A etcd_pid
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$work/etcd$i" \
        --listen-client-urls "http://127.0.0.1:$((base + 300 + i))" \
        --advertise-client-urls "http://127.0.0.1:$((base + 300 + i))" \
        --listen-peer-urls "http://127.0.0.1:$((base + 400 + i))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((base + 400 + i))" \
        --initial-cluster "$initial" --initial-cluster-token provreg-bench \
        --initial-cluster-state new --logger zap --log-level warn \
        > "$work/etcd$i.log" 2>&1 &
    pids+=($!)
    etcd_pid[$i]=$!
done
endpoints="127.0.0.1:$((base + 301)),127.0.0.1:$((base + 302)),127.0.0.1:$((base + 303))"
for _ in $(seq 1 300); do
    if etcdctl --endpoints "$endpoints" endpoint health > /dev/null 2>&1; then
        break
    fi
    sleep 0.1
done
etcdctl --endpoints "$endpoints" endpoint health > /dev/null 2>&1 || {
    echo "etcd did not become healthy; see $work/etcd*.log" >&2
    exit 1
}
# The leader's member id, then which of our processes it is.
leader_id="$(etcdctl --endpoints "$endpoints" endpoint status -w json | jq -r '.[0].Status.leader')"
etcd_leader=""
for i in 1 2 3; do
    id="$(etcdctl --endpoints "127.0.0.1:$((base + 300 + i))" endpoint status -w json | jq -r '.[0].Status.header.member_id')"
    [ "$id" = "$leader_id" ] && etcd_leader="$i"
done
echo "   leader member e$etcd_leader"
enodes=()
for i in 1 2 3; do
    enodes+=(--node "http://127.0.0.1:$((base + 300 + i))")
done
servers="${etcd_pid[1]} ${etcd_pid[2]} ${etcd_pid[3]}"
for c in 16 64 256; do
    run "etcd3-upload-$c" "${etcd_pid[$etcd_leader]}" "$servers" --target etcd --mode upload --clients "$c" "${enodes[@]}"
done
run etcd3-read-64 "${etcd_pid[$etcd_leader]}" "$servers" --target etcd --mode read --clients 64 "${enodes[@]}"
run etcd3-mixed-64 "${etcd_pid[$etcd_leader]}" "$servers" --target etcd --mode mixed --clients 64 --readers 64 "${enodes[@]}"
stop_servers

# --- the table --------------------------------------------------------------
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== results ($duration s per run; CPU ms per op over the whole run, warm-up included)"
printf '%-22s %-7s %7s %9s %8s %8s %8s %9s %9s %8s  %s\n' \
    run group clients ok/s p50_ms p99_ms max_ms leader_ms all_ms bench_s errors
for name in provreg3-upload-16 provreg3-upload-64 provreg3-upload-256 provreg3-batch-8 \
    provreg3-read-64 provreg3-mixed-64 provreg1-upload-1 provreg1-upload-16 provreg1-upload-64 \
    provreg1-batch-8 \
    etcd3-upload-16 etcd3-upload-64 etcd3-upload-256 etcd3-read-64 etcd3-mixed-64; do
    jq -r '. as $r | .groups[] | [$r.name, .name, .clients, .ok_per_s, .p50_ms, .p99_ms, .max_ms,
        (($r.leader_cpu_ms_per_op // 0) * 1000 | round / 1000),
        (($r.servers_cpu_ms_per_op // 0) * 1000 | round / 1000),
        ($r.bench_cpu_s * 100 | round / 100), (.errors | tostring)] | @tsv' "$results/$name.json"
done | while IFS=$'\t' read -r n g c ops p50 p99 max lcpu acpu bcpu errs; do
    printf '%-22s %-7s %7s %9s %8s %8s %8s %9s %9s %8s  %s\n' \
        "$n" "$g" "$c" "$ops" "$p50" "$p99" "$max" "$lcpu" "$acpu" "$bcpu" "$errs"
done

echo
echo "== provreg (3 nodes) / etcd (3 members)"
printf '%-18s %10s %10s\n' run "ok/s" "p99"
for kind in upload-16 upload-64 upload-256 read-64 mixed-64; do
    for group in writes reads; do
        p="$results/provreg3-$kind.json"
        e="$results/etcd3-$kind.json"
        jq -e --arg g "$group" '.groups[] | select(.name == $g)' "$p" > /dev/null || continue
        jq -rn --arg g "$group" --arg kind "$kind" --slurpfile p "$p" --slurpfile e "$e" '
            ($p[0].groups[] | select(.name == $g)) as $a
            | ($e[0].groups[] | select(.name == $g)) as $b
            | def ratio(x; y): if y > 0 then (x / y * 100 | round / 100 | tostring) + "x" else "-" end;
              [$kind + " " + $g, ratio($a.ok_per_s; $b.ok_per_s), ratio($a.p99_ms; $b.p99_ms)]
            | @tsv' | while IFS=$'\t' read -r n r1 r2; do
            printf '%-18s %10s %10s\n' "$n" "$r1" "$r2"
        done
    done
done
