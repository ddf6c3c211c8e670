#!/usr/bin/env bash
# Backup and copy on the study of BENCHMARKS.md's size (250 sessions × 50
# turns, 127,750 rows, ~63 MB), made by the turn benchmark: `interview-db
# backup`, then `interview-db copy` SQLite → PostgreSQL, PostgreSQL → SQLite
# and SQLite → SQLite (each verified), and pgloader loading the same file
# into a schema `init` made (data only) when pgloader is installed — a
# benchmark-only tool (`apt-get install pgloader`), never a dependency.
# PostgreSQL: POSTGRES_TEST_URL as for scripts/test.sh (a maintenance URL
# whose role may CREATE DATABASE).
# Usage: scripts/bench_copy.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
: "${POSTGRES_TEST_URL:?set POSTGRES_TEST_URL (scripts/test.sh says how)}"
cargo build --release --quiet -p interview-db
cargo build --release --quiet --example turn_workload
db=target/release/interview-db
dir=target/bench/copy
rm -rf "$dir" && mkdir -p "$dir"
target/release/examples/turn_workload --database-url "sqlite://$dir/study.db" \
  --sessions 250 --turns 50 >/dev/null
pg_url="${POSTGRES_TEST_URL%/*}/interview_copy_bench"
fresh_postgres() {
  psql "$POSTGRES_TEST_URL" -qc "DROP DATABASE IF EXISTS interview_copy_bench" \
    -c "CREATE DATABASE interview_copy_bench" 2>/dev/null
  "$db" --database-url "$pg_url" init >/dev/null 2>&1
}
seconds() { python3 -c "import json,sys; print(round(json.load(sys.stdin)['elapsed_ms']/1000, 2))"; }
for round in $(seq "$rounds"); do
  rm -f "$dir/backup.db" "$dir/back.db" "$dir/copy.db"
  b=$("$db" --database-url "sqlite://$dir/study.db" backup "$dir/backup.db" 2>/dev/null | seconds)
  fresh_postgres
  to_pg=$("$db" copy --from "$dir/study.db" --to "$pg_url" 2>/dev/null | seconds)
  from_pg=$("$db" copy --from "$pg_url" --to "$dir/back.db" 2>/dev/null | seconds)
  lite=$("$db" copy --from "$dir/study.db" --to "$dir/copy.db" 2>/dev/null | seconds)
  line="round $round: backup ${b} s; copy SQLite→PostgreSQL ${to_pg} s, PostgreSQL→SQLite ${from_pg} s, SQLite→SQLite ${lite} s (127,750 rows, verified)"
  if command -v pgloader >/dev/null; then
    fresh_postgres
    start=$(date +%s.%N)
    pgloader --with "data only" "$dir/study.db" "pgsql://${pg_url#*://}" >/dev/null 2>&1 || true
    line="$line; pgloader SQLite→PostgreSQL (data only, no verification) $(python3 -c "print(round($(date +%s.%N) - $start, 2))") s"
  fi
  echo "$line"
done
