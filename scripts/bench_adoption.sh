#!/usr/bin/env bash
# Adoption of a large Python-made file: a long-lived file
# (tests/fixtures/python_eras.py) grown to N utterances in the Python
# code's timestamp shapes, taken over by `interview-db init` (release
# build), ROUNDS times on disk (target/bench) and on tmpfs (/dev/shm).
# Prints the seconds of each round.
#
# Usage: scripts/bench_adoption.sh [N=100000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
rounds=${2:-3}
cargo build --release -q -p interview-db
binary=$PWD/target/release/interview-db
template=$(mktemp -d)
trap 'rm -rf "$template"' EXIT
PYTHON_HOST_ZONE=Europe/Berlin python3 tests/fixtures/python_eras.py long-lived "$template/python.db" > /dev/null
python3 - "$template/python.db" "$n" <<'PY'
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
(session,) = db.execute("SELECT id FROM sessions LIMIT 1").fetchone()
db.executemany(
    "INSERT INTO utterances (id, session_id, turn_number, speaker, text, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    [(str(uuid.uuid4()), session, 2 + i // 2, ("user", "system")[i % 2],
      "an answer of some length, as participants give them %d" % i,
      "2026-03-01T10:%02d:%02d.%06d" % (i // 60 % 60, i % 60, i % 1000000))
     for i in range(int(sys.argv[2]))])
db.commit()
PY
echo "file: $(stat -c %s "$template/python.db") bytes, $n utterances added"
for place in target/bench /dev/shm; do
  dir=$place/adoption-bench-$$
  mkdir -p "$dir"
  for round in $(seq "$rounds"); do
    rm -f "$dir"/interview.db*
    cp "$template/python.db" "$dir/interview.db"
    start=$(date +%s.%N)
    DATABASE_PATH=$dir/interview.db "$binary" init --python-local-time-zone Europe/Berlin > /dev/null 2>&1
    end=$(date +%s.%N)
    echo "$place round $round: $(python3 -c "print(round($end - $start, 2))") s"
  done
  rm -rf "$dir"
done
