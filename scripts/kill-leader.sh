#!/usr/bin/env bash
# Leader failover under load: a 3-voter provreg cluster on loopback loses
# its leader to SIGKILL, ROUNDS times over. In each round 8 writers
# register files through the followers while the leader is killed and
# started again on its data dir.
#
# This is the integration test faults::leader_kill_rounds
# (service/tests/api/faults.rs) on a release build. Per round it prints the
# node killed, the node that leads next, how many elections that took
# (terms), the time from the kill until a survivor names the new leader and
# until the first write sent after the kill was accepted, the writes
# acknowledged and the 503s (retry later) answered. At the end: the totals
# and the median and worst times. The test fails if any round's first write
# took 5 s or more, or if any acknowledged write is missing or differs on
# any node, or any checkpoint a receipt carried is not a prefix of the final
# tree; the figures are printed either way.
#
# Usage: scripts/kill-leader.sh [ROUNDS]   (default 20)
# Environment:
#   CARGO_TARGET_DIR  where the release build goes (default: target-release
#                     beside the checkout, so it never locks the development
#                     build)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$root")/target-release}"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "revision: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "rounds: $rounds"
echo

cd "$root"
# The default suite (`cargo test --workspace`, as CI runs it) runs this
# test with 3 rounds on a debug build; here it runs with ROUNDS rounds on a
# release build.
PROVREG_KILL_ROUNDS="$rounds" cargo test --release -p service --test api \
    faults::leader_kill_rounds -- --nocapture
