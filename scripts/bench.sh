#!/usr/bin/env bash
# The turn workload of BENCHMARKS.md, side by side in one run: the raw
# rusqlite baseline (UUIDv4 and UUIDv7 ids) and this module at C=1 and C=8,
# on SQLite files under target/bench (on this machine's disk), then this
# module on PostgreSQL when POSTGRES_TEST_URL names a server. Each line is
# the example's JSON; the last lines give the ratios.
# Usage: scripts/bench.sh [rounds]   (default 3; the best round of each counts)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release --quiet --example turn_workload
bin=target/release/examples/turn_workload
dir=target/bench
mkdir -p "$dir"
out=$(mktemp)
for _ in $(seq "$rounds"); do
  "$bin" --impl rusqlite --ids v4 --database-url "sqlite://$dir/raw-v4.db" | tee -a "$out"
  "$bin" --impl rusqlite --ids v7 --database-url "sqlite://$dir/raw-v7.db" | tee -a "$out"
  "$bin" --database-url "sqlite://$dir/module.db" --concurrency 1 | tee -a "$out"
  "$bin" --database-url "sqlite://$dir/module.db" --concurrency 8 | tee -a "$out"
done
if [[ -n ${POSTGRES_TEST_URL:-} ]]; then
  pg_url="${POSTGRES_TEST_URL%/*}/interview_bench"
  psql "$POSTGRES_TEST_URL" -qc "DROP DATABASE IF EXISTS interview_bench" -c "CREATE DATABASE interview_bench" >/dev/null
  "$bin" --database-url "$pg_url" --concurrency 1 | tee -a "$out"
  "$bin" --database-url "$pg_url" --concurrency 8 | tee -a "$out"
fi
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def best(impl, backend="sqlite", concurrency=1, key="write_turns_per_s", ids=None):
    xs = [r[key] for r in rows if r["impl"] == impl and r["backend"] == backend
          and r["concurrency"] == concurrency and (ids is None or r.get("ids") == ids)]
    return max(xs) if xs else None
raw7 = best("rusqlite", ids="v7"); raw4 = best("rusqlite", ids="v4")
m1 = best("interview-persistence"); m8 = best("interview-persistence", concurrency=8)
r7 = best("rusqlite", ids="v7", key="read_sessions_per_s"); mr = best("interview-persistence", key="read_sessions_per_s")
print(f"write turns/s  raw v4 {raw4:.0f}  raw v7 {raw7:.0f}  module C=1 {m1:.0f} ({m1/raw7:.2f} of raw v7)  module C=8 {m8:.0f} ({m8/m1:.2f} of C=1)")
print(f"read sessions/s  raw v7 {r7:.0f}  module {mr:.0f} ({mr/r7:.2f} of raw)")
PY
