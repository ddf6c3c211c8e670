#!/usr/bin/env bash
# Where the `--today` turn's CPU time goes: the module and raw rusqlite
# (examples/today_workload) each run under `perf record` with the files on
# tmpfs, where only CPU counts, and every sample is put in one category by
# the frames on its stack (scripts/profile_classify.py). Prints microseconds
# of CPU per turn by category for both, and the difference.
# Needs perf (linux-perf). Builds the example with line tables into
# target/profile, so that the stacks unwind; the benchmark build is not
# touched.
# Usage: scripts/profile_today.sh [sessions]   (default 60, 50 turns each)
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-60}
frequency=1500
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/profile \
  cargo build --release --quiet --example today_workload
bin=target/profile/release/examples/today_workload
tmp=$(mktemp -d /dev/shm/interview-profile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for impl in interview-persistence rusqlite; do
  perf record -q -F "$frequency" --call-graph dwarf,32768 -o "$tmp/$impl.data" \
    "$bin" --impl "$impl" --phase turns --sessions "$sessions" \
    --database-url "sqlite://$tmp/$impl.db" >"$tmp/$impl.json"
  cat "$tmp/$impl.json"
  perf script -i "$tmp/$impl.data" -F tid,comm,ip,sym --no-inline >"$tmp/$impl.stacks" 2>/dev/null
done
python3 scripts/profile_classify.py --frequency "$frequency" --turns $((sessions * 50)) \
  "module=$tmp/interview-persistence.stacks" "raw=$tmp/rusqlite.stacks"
