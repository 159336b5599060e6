#!/usr/bin/env bash
# Catching up: a node that was down while many entries were written, and a
# node added after the Raft log was purged, reach the identical tree.
#
# Forms a 3-voter provreg cluster on loopback (each node its own process
# and data dir, fsync on and --snapshot-every 5000, the defaults), then:
#
# 1. Stops node 3 with SIGKILL (STOP_SIGNAL=TERM for a clean stop) and
#    writes ENTRIES hash-only registrations through nodes 1 and 2 with
#    provreg-bench (`POST /v1/content/batch`, BATCH items per request, 8
#    clients). A Raft entry carries a batch or more (group commit gathers
#    concurrent writes into one command), so 100 batches alone never reach
#    --snapshot-every; PURGE_CLAIMS more registrations follow, one per
#    request from one client on each of nodes 1 and 2, each its own Raft
#    entry, so that the log passes 5,000 entries and the nodes build a
#    snapshot. (openraft's leader postpones purging entries that a
#    replication still has in flight, as it has for node 3 while node 3 is
#    down, so node 3 may well catch up from the log.) Node 3 is then
#    started again on its data dir, and the script polls
#    `GET /v1/log/checkpoint` on all three public ports until tree size and
#    root hash are the same on every node.
# 2. Starts a new node 4 with --join and adds it as a learner
#    (`POST /v1/cluster/learners`, as the README shows) once node 3 has
#    caught up, so nothing holds back the purge behind the snapshot, and
#    polls until its tree size and root are the others'.
#
# It prints the entries written and the write rates, the time each node
# took to catch up (node 3 from its restart, node 4 from the request that
# adds it), whether it installed a snapshot (its log says "Installed a
# snapshot"), and the final tree size and root on every node. It exits
# non-zero if a write phase fails, no snapshot was built, or a node does
# not reach the others' tree size and root within CATCH_UP_TIMEOUT.
#
# Usage: scripts/catch-up.sh
# Environment:
#   ENTRIES          hash-only registrations written while node 3 is down,
#                    in batches (default 100000)
#   BATCH            items per batch request, 1 to 1000 (default 1000)
#   PURGE_CLAIMS     registrations written one per request after the
#                    batches, to push the Raft log past --snapshot-every
#                    (default 5200; with 0 no snapshot is built and the
#                    script fails)
#   STOP_SIGNAL      how node 3 is stopped: KILL (default) or TERM
#   CATCH_UP_TIMEOUT seconds a node may take to catch up (default 600)
#   PORT_BASE        first of the loopback ports used (default 28000; the
#                    nodes use BASE+1..4 for peers and BASE+81..84 for the
#                    public API)
#   KEEP_WORK        set to 1 to keep the data dirs and logs (the path is
#                    printed)
#   CARGO_TARGET_DIR where the release build goes (default: target-release
#                    beside the checkout, so it never locks the development
#                    build's target dir)
# Needs: cargo, curl, jq, openssl, ss.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
entries="${ENTRIES:-100000}"
batch="${BATCH:-1000}"
purge_claims="${PURGE_CLAIMS:-5200}"
stop_signal="${STOP_SIGNAL:-KILL}"
timeout="${CATCH_UP_TIMEOUT:-600}"
base="${PORT_BASE:-28000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$root")/target-release}"
provreg="$CARGO_TARGET_DIR/release/provreg"
bench="$CARGO_TARGET_DIR/release/provreg-bench"

for tool in cargo curl jq openssl ss; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
case "$stop_signal" in
    KILL | TERM) ;;
    *) echo "STOP_SIGNAL must be KILL or TERM, not $stop_signal" >&2; exit 1 ;;
esac
if [ "$batch" -lt 1 ] || [ "$batch" -gt 1000 ] || [ $((entries % batch)) -ne 0 ]; then
    echo "BATCH must be 1 to 1000 and divide ENTRIES ($entries)" >&2
    exit 1
fi

echo "== building (release)"
(cd "$root" && nice -n 10 cargo build --release --bin provreg --bin provreg-bench)

for i in 1 2 3 4; do
    for port in $((base + i)) $((base + 80 + i)); do
        if ss -Hltn "sport = :$port" | grep -q .; then
            echo "port $port is in use; set PORT_BASE to another range" >&2
            exit 1
        fi
    done
done

work="$(mktemp -d -t provreg-catch-up.XXXXXX)"
declare -A node_pid

# Every node started here is stopped on any exit, by its own pid.
cleanup() {
    local pid
    for pid in "${node_pid[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${node_pid[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "data dirs and logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

api() { echo "http://127.0.0.1:$((base + 80 + $1))"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# start_node ID [--join]: node ID on its own ports and data dir.
start_node() {
    local id="$1"
    shift
    "$provreg" serve --node-id "$id" --listen "127.0.0.1:$((base + 80 + id))" \
        --data-dir "$work/n$id" --peer-listen "127.0.0.1:$((base + id))" \
        --advertise "http://127.0.0.1:$((base + id))" \
        --cluster-secret-file "$work/cluster.secret" "$@" \
        >> "$work/n$id.log" 2>&1 &
    node_pid[$id]=$!
}

# Waits until a node's public API answers at all.
wait_http() {
    local url
    url="$(api "$1")/v1/health"
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "$url"; then
            return 0
        fi
        sleep 0.1
    done
    echo "$url did not answer in 30 s; see $work/n$1.log" >&2
    exit 1
}

# A node's tree head from its signed checkpoint (origin, size, base64 root,
# then the signatures) as "SIZE ROOT", or "- -" if it does not answer.
head_of() {
    local cp
    if cp="$(curl -sf --max-time 5 "$(api "$1")/v1/log/checkpoint")"; then
        echo "$cp" | sed -n '2p;3p' | paste -sd' '
    else
        echo "- -"
    fi
}

# converge LABEL STARTED IDS...: polls until every node in IDS has the same
# tree size and root, then prints how long that took since STARTED.
converge() {
    local label="$1" started="$2" first id same h
    shift 2
    while true; do
        first="$(head_of "$1")"
        same=1
        for id in "$@"; do
            h="$(head_of "$id")"
            if [ "$h" != "$first" ] || [ "$h" = "- -" ]; then
                same=0
            fi
        done
        if [ "$same" = 1 ]; then
            echo "   $label caught up in $(since "$started") s (tree size ${first%% *})"
            return 0
        fi
        if awk -v a="$started" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
            echo "   $label did NOT catch up within $timeout s:" >&2
            for id in "$@"; do
                echo "     node $id: $(head_of "$id")" >&2
            done
            return 1
        fi
        sleep 0.5
    done
}

# snapshot_note ID: whether the node's log says it installed a snapshot.
snapshot_note() {
    local n
    n="$(grep -c 'Installed a snapshot' "$work/n$1.log" || true)"
    if [ "$n" -gt 0 ]; then
        echo "yes ($n time(s): $(grep 'Installed a snapshot' "$work/n$1.log" | tail -1 \
            | grep -o 'tree_size=[0-9]*' || true))"
    else
        echo "no"
    fi
}

# write NAME BENCH-ARGS...: one provreg-bench run through nodes 1 and 2; fails
# the script if any request failed.
write() {
    local name="$1" started ok errors
    shift
    started="$(now)"
    if ! "$bench" --json --warmup 0 --mode upload \
        --node "$(api 1)=$(cat "$work/n1/operator.token")" \
        --node "$(api 2)=$(cat "$work/n2/operator.token")" "$@" \
        > "$work/$name.json" 2> "$work/$name.err"; then
        echo "provreg-bench failed in $name:" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
    ok="$(jq '[.groups[].ok] | add' "$work/$name.json")"
    errors="$(jq -c '[.groups[].errors] | add' "$work/$name.json")"
    echo "   $name: $ok registrations in $(since "$started") s," \
        "$(jq '.groups[0].ok_per_s' "$work/$name.json")/s," \
        "request p50 $(jq '.groups[0].p50_ms' "$work/$name.json") ms" \
        "p99 $(jq '.groups[0].p99_ms' "$work/$name.json") ms, errors $errors"
    if [ "$errors" != "{}" ]; then
        echo "some writes failed in $name" >&2
        exit 1
    fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "revision: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "entries: $entries in batches of $batch, then $purge_claims one per request;" \
    "node 3 stopped with SIG$stop_signal"

echo "== forming 3 voters"
openssl rand -hex 32 > "$work/cluster.secret"
chmod 600 "$work/cluster.secret"
start_node 1
start_node 2 --join
start_node 3 --join
for i in 1 2 3; do
    wait_http "$i"
done
t1="$(cat "$work/n1/operator.token")"
for i in 2 3; do
    curl -sf -X POST "$(api 1)/v1/cluster/learners" -H "Authorization: Bearer $t1" \
        -H 'Content-Type: application/json' \
        -d "{\"node_id\": $i, \"address\": \"http://127.0.0.1:$((base + i))\"}" > /dev/null
done
curl -sf -X POST "$(api 1)/v1/cluster/membership" -H "Authorization: Bearer $t1" \
    -H 'Content-Type: application/json' -d '{"voters": [1, 2, 3]}' > /dev/null
status="$(curl -sf "$(api 1)/v1/cluster/status")"
echo "   voters $(echo "$status" | jq -c .voters), leader node $(echo "$status" | jq -r .leader_id)"

echo "== phase 1: node 3 down while $entries entries are written"
kill "-$stop_signal" "${node_pid[3]}"
wait "${node_pid[3]}" 2>/dev/null || true
unset 'node_pid[3]'
echo "   node 3 stopped (SIG$stop_signal) at tree size $(head_of 1 | cut -d' ' -f1)"
# Writes need a leader among nodes 1 and 2; node 3 was only a follower
# unless the formation made it leader.
for _ in $(seq 1 100); do
    leader="$(curl -sf "$(api 1)/v1/cluster/status" | jq -r '.leader_id // empty')"
    [ -n "$leader" ] && [ "$leader" != 3 ] && break
    sleep 0.1
done
write batches --batch "$batch" --clients 8 --requests $((entries / batch))
if [ "$purge_claims" -gt 0 ]; then
    # One client per node: nothing queues behind a write, so each is a
    # Raft entry of its own.
    write singles --batch 1 --clients 2 --requests "$purge_claims"
fi
written_at="$(date -u +%H:%M:%SZ)"
# Snapshots are built in the background: give them a moment to appear.
snapshotted=no
for _ in $(seq 1 120); do
    if [ -s "$work/n1/raft/snapshot.jsonl" ] && [ -s "$work/n2/raft/snapshot.jsonl" ]; then
        snapshotted=yes
        break
    fi
    sleep 0.5
done
echo "   writes ended at $written_at, tree size $(head_of 1 | cut -d' ' -f1);" \
    "snapshot built on nodes 1 and 2: $snapshotted"

started="$(now)"
start_node 3 --join
converge "node 3 (from its restart)" "$started" 1 2 3 || fail=1
echo "   node 3 installed a snapshot: $(snapshot_note 3)"

echo "== phase 2: new node 4 added as a learner after the snapshot"
start_node 4 --join
wait_http 4
started="$(now)"
code="$(curl -s -o "$work/learner.json" -w '%{http_code}' -X POST "$(api 1)/v1/cluster/learners" \
    -H "Authorization: Bearer $t1" -H 'Content-Type: application/json' \
    -d "{\"node_id\": 4, \"address\": \"http://127.0.0.1:$((base + 4))\"}")"
echo "   POST /v1/cluster/learners answered $code after $(since "$started") s: $(cat "$work/learner.json")"
converge "node 4 (from the request adding it)" "$started" 1 2 3 4 || fail=1
echo "   node 4 installed a snapshot: $(snapshot_note 4)"

echo "== final tree heads (size, base64 root)"
for i in 1 2 3 4; do
    echo "   node $i: $(head_of "$i")"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$snapshotted" != yes ]; then
    echo "FAILED: no snapshot was built, so the log was never purged and nothing" \
        "here needed one; raise PURGE_CLAIMS" >&2
    exit 1
fi
if [ "${fail:-0}" = 1 ]; then
    echo "FAILED: a node did not reach the others' tree size and root" >&2
    for i in 3 4; do
        echo "--- the end of node $i's log" >&2
        tail -n 20 "$work/n$i.log" >&2
    done
    KEEP_WORK=1
    exit 1
fi
echo "OK: all four nodes have the same tree size and root"
