#!/usr/bin/env bash
# The turn workload of BENCHMARKS.md, side by side in one run, and every
# ratio the performance goals name, in one table:
#   - SQLite, C=1, writes and reads against raw SQLite (rusqlite, UUIDv7),
#     with the files on this machine's disk (target/bench) and on tmpfs
#     (/dev/shm), where only CPU counts;
#   - SQLite, C=8 against C=1; synchronous=FULL, the module at C=8 against
#     raw at C=1;
#   - the turn as the Python system writes it today (`--today`:
#     examples/today_workload) and the similarity look-up over 500 nodes,
#     each against raw SQLite doing the same work, on disk and on tmpfs;
#   - a 1,000-turn session: time per turn over its last 100 turns against
#     its first 100; the cost of reading a context of 50, 200 and 1,000
#     turns, per row returned; peak RSS after 20 and after 80 sessions;
#   - PostgreSQL (when POSTGRES_TEST_URL names a server whose role may
#     create databases): the module against raw sqlx (one prepared
#     statement per turn) at C=1 and C=8, and its C=8 against its C=1.
# Every run prints its JSON line; each figure is the best of the rounds. A
# run that meets any error exits non-zero, and so does this script: a
# table means zero errors.
# Usage: scripts/bench.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release --quiet --example turn_workload --example today_workload
bin=target/release/examples/turn_workload
today=target/release/examples/today_workload
disk=target/bench
tmp=$(mktemp -d /dev/shm/interview-bench.XXXXXX)
out=$(mktemp)
trap 'rm -rf "$tmp" "$out"' EXIT
mkdir -p "$disk"

run() { # label, then the example's arguments
  local label=$1
  shift
  run_with "$bin" "$label" "$@"
}

run_with() { # binary, label, then the binary's arguments
  local binary=$1 label=$2
  shift 2
  "$binary" "$@" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" | tee -a "$out"
}

for _ in $(seq "$rounds"); do
  for place in disk tmpfs; do
    dir=$disk
    [[ $place == tmpfs ]] && dir=$tmp
    run "raw $place" --impl rusqlite --sessions 40 --read-rounds 5 --database-url "sqlite://$dir/raw.db"
    run "module $place C=1" --sessions 40 --read-rounds 5 --database-url "sqlite://$dir/module.db"
    run "module $place C=8" --sessions 40 --concurrency 8 --database-url "sqlite://$dir/module.db"
    # The turn as the Python system writes it today, and the look-up.
    run_with "$today" "raw today $place" --impl rusqlite --phase turns --database-url "sqlite://$dir/today-raw.db"
    run_with "$today" "module today $place" --phase turns --database-url "sqlite://$dir/today.db"
    run_with "$today" "raw similarity $place" --impl rusqlite --phase similarity --database-url "sqlite://$dir/similar-raw.db"
    run_with "$today" "module similarity $place" --phase similarity --database-url "sqlite://$dir/similar.db"
  done
  run "raw full" --impl rusqlite --sessions 40 --full-sync --database-url "sqlite://$disk/raw.db"
  run "module full C=8" --sessions 40 --concurrency 8 --full-sync --database-url "sqlite://$disk/module.db"
  for turns in 50 200 1000; do
    sessions=$((turns == 1000 ? 2 : 4000 / turns))
    run "raw $turns turns" --impl rusqlite --sessions "$sessions" --turns "$turns" --read-rounds 5 --database-url "sqlite://$disk/raw.db"
    run "module $turns turns" --sessions "$sessions" --turns "$turns" --read-rounds 5 --database-url "sqlite://$disk/module.db"
  done
  run "module 20 sessions" --sessions 20 --database-url "sqlite://$disk/module.db"
  run "module 80 sessions" --sessions 80 --database-url "sqlite://$disk/module.db"
  if [[ -n ${POSTGRES_TEST_URL:-} ]]; then
    pg_url="${POSTGRES_TEST_URL%/*}/interview_bench"
    psql "$POSTGRES_TEST_URL" -qc "DROP DATABASE IF EXISTS interview_bench" -c "CREATE DATABASE interview_bench" >/dev/null
    for c in 1 8; do
      run "raw pg C=$c" --impl sqlx --concurrency "$c" --database-url "$pg_url"
      run "module pg C=$c" --concurrency "$c" --database-url "$pg_url"
    done
    psql "$POSTGRES_TEST_URL" -qc "DROP DATABASE IF EXISTS interview_bench" >/dev/null
  fi
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def runs(label):
    return [r for r in rows if r["label"] == label]
def best(label, key, pick=max):
    xs = [r[key] for r in runs(label) if r.get(key) is not None]
    return pick(xs) if xs else None
table = []
def goal(name, measured, target, met):
    table.append((name, measured, target, "yes" if met else "NO"))
def ratio(name, a, b, target, label_a, label_b, unit):
    if a is None or b is None:
        return
    goal(name, f"{a / b:.2f}  ({label_a} {a:,.0f} / {label_b} {b:,.0f} {unit})", f">= {target}", a / b >= target)

for place in ["disk", "tmpfs"]:
    ratio(f"SQLite {place} C=1 writes vs raw", best(f"module {place} C=1", "write_turns_per_s"),
          best(f"raw {place}", "write_turns_per_s"), 0.8, "module", "raw", "turns/s")
    ratio(f"SQLite {place} C=1 reads vs raw", best(f"module {place} C=1", "read_sessions_per_s"),
          best(f"raw {place}", "read_sessions_per_s"), 0.8, "module", "raw", "sessions/s")
    c8, c1 = best(f"module {place} C=8", "write_turns_per_s"), best(f"module {place} C=1", "write_turns_per_s")
    ratio(f"SQLite {place} C=8 vs C=1", c8, c1, 1.0, "C=8", "C=1", "turns/s")
for place in ["disk", "tmpfs"]:
    ratio(f"SQLite {place} --today turn vs raw", best(f"module today {place}", "write_turns_per_s"),
          best(f"raw today {place}", "write_turns_per_s"), 0.8, "module", "raw", "turns/s")
    # Look-ups per second, so that higher is better as in every ratio here.
    raw_us = best(f"raw similarity {place}", "us_per_lookup", min)
    module_us = best(f"module similarity {place}", "us_per_lookup", min)
    if raw_us and module_us:
        ratio(f"SQLite {place} similarity (500 nodes) vs raw", 1e6 / module_us, 1e6 / raw_us, 0.8,
              "module", "raw", "look-ups/s")
ratio("synchronous=FULL: module C=8 vs raw C=1", best("module full C=8", "write_turns_per_s"),
      best("raw full", "write_turns_per_s"), 1.0, "module", "raw", "turns/s")

long = runs("module 1000 turns")
if long:
    blocks = [min(r["turn_us_by_100"][i] for r in long) for i in range(len(long[0]["turn_us_by_100"]))]
    goal("1,000-turn session: last 100 vs first 100 turns", f"{blocks[-1] / blocks[0]:.2f}  (µs/turn by 100: {', '.join(f'{b:.0f}' for b in blocks)})",
         "<= 1.2", blocks[-1] / blocks[0] <= 1.2)
    raw_long = runs("raw 1000 turns")
    if raw_long:
        raw_blocks = [min(r["turn_us_by_100"][i] for r in raw_long) for i in range(len(raw_long[0]["turn_us_by_100"]))]
        table.append(("  raw, the same", f"{raw_blocks[-1] / raw_blocks[0]:.2f}  (µs/turn by 100: {', '.join(f'{b:.0f}' for b in raw_blocks)})", "", ""))
curve = []
for turns in [50, 200, 1000]:
    m = best(f"module {turns} turns", "read_us_per_row", min)
    r = best(f"raw {turns} turns", "read_us_per_row", min)
    s = best(f"module {turns} turns", "read_us_per_session", min)
    if m is not None:
        curve.append((turns, m, r, s))
if curve:
    flat = max(c[1] for c in curve) / min(c[1] for c in curve)
    goal("context read cost per row (50 / 200 / 1,000 turns)",
         "  ".join(f"{t}: {m:.2f} µs/row, {s:,.0f} µs/read (raw {r:.2f})" for t, m, r, s in curve),
         "in proportion (max/min per row <= 1.2)", flat <= 1.2)
rss20, rss80 = best("module 20 sessions", "peak_rss_kb"), best("module 80 sessions", "peak_rss_kb")
if rss20 and rss80:
    goal("peak RSS, 80 vs 20 sessions written", f"{rss80 / rss20:.2f}  ({rss20 / 1024:.1f} MiB -> {rss80 / 1024:.1f} MiB)", "<= 1.2 (flat)", rss80 / rss20 <= 1.2)
for c in [1, 8]:
    ratio(f"PostgreSQL C={c} writes vs raw sqlx", best(f"module pg C={c}", "write_turns_per_s"),
          best(f"raw pg C={c}", "write_turns_per_s"), 0.8, "module", "raw", "turns/s")
    ratio(f"PostgreSQL C={c} reads vs raw sqlx", best(f"module pg C={c}", "read_sessions_per_s"),
          best(f"raw pg C={c}", "read_sessions_per_s"), 0.8, "module", "raw", "sessions/s")
ratio("PostgreSQL module C=8 vs C=1", best("module pg C=8", "write_turns_per_s"),
      best("module pg C=1", "write_turns_per_s"), 2.0, "C=8", "C=1", "turns/s")
width = max(len(t[0]) for t in table)
print()
print(f"{'goal':<{width}}  met  target / measured")
for name, measured, target, met in table:
    print(f"{name:<{width}}  {met:<3}  {target}  |  {measured}")
PY
