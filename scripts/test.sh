#!/usr/bin/env bash
# Runs the whole test suite on both backends: SQLite (embedded, always) and
# PostgreSQL (a real server).
#
# PostgreSQL: if POSTGRES_TEST_URL is already set (a maintenance URL whose
# role may CREATE DATABASE, e.g. postgres://me:pw@127.0.0.1:5432/postgres),
# the tests use that server. Otherwise this script starts the machine's
# PostgreSQL 15 (the Debian cluster, or a private one under target/ when
# there is none), creates the role `interview_test`, and exports the URL
# and POSTGRES_RESTART_COMMAND (how to restart that server, for the restart
# test).
# Every test runs under a deadline: cargo-nextest with the limits in
# .config/nextest.toml (a stuck test is killed and named), doctests under
# `timeout`. Any failure fails the script, after every group has run.
# Extra arguments go to each runner (e.g. a test-name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ROLE=interview_test
PG_PASSWORD=interview_test

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local port=5432 restart_command="" restart_required=0
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p "$port"; then
    # Already running: restartable when it is the packaged cluster.
    if [[ $(id -u) -eq 0 ]] && command -v pg_ctlcluster >/dev/null \
      && pg_lsclusters -h 2>/dev/null | grep -q '^15 *main *5432 *online'; then
      restart_command="pg_ctlcluster 15 main restart"
    fi
  elif command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q '^15 *main'; then
    pg_ctlcluster 15 main start || true
    if [[ $(id -u) -eq 0 ]]; then restart_command="pg_ctlcluster 15 main restart"; fi
    restart_required=1
  else
    # No packaged cluster: a private one, owned by the postgres user.
    local bindir data
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    data="$PWD/target/pgdata"
    port=54329
    mkdir -p "$data"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$data"
    [[ -f $data/PG_VERSION ]] || as_postgres "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
    as_postgres "$bindir/pg_ctl" -D "$data" -o "-p $port -k /tmp" -l "$data/log" -w start >/dev/null || true
    restart_command=$(printf '%q ' "$bindir/pg_ctl" -D "$data" -o "-p $port -k /tmp" -l "$data/log" -w -m fast restart)
    if [[ $(id -u) -eq 0 ]]; then restart_command="runuser -u postgres -- $restart_command"; fi
    restart_required=1
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$port" || { echo "PostgreSQL did not start on port $port" >&2; return 1; }

  local psql=(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt)
  if ! as_postgres "${psql[@]}" -c 'select 1' >/dev/null 2>&1; then
    psql=(psql -p "$port" -d postgres -v ON_ERROR_STOP=1 -qAt)   # local socket, peer auth
  fi
  as_postgres "${psql[@]}" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
  export POSTGRES_TEST_URL="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$port/postgres"
  # The server-restart test (tests/postgres_restart.rs) restarts this
  # server: it runs after the other test binaries, alone.
  # Required when this script started the server (as on a fresh CI machine).
  export POSTGRES_RESTART_COMMAND="$restart_command" POSTGRES_RESTART_REQUIRED="$restart_required"
}

if [[ -z ${POSTGRES_TEST_URL:-} ]]; then
  start_postgres
fi
echo "PostgreSQL tests use ${POSTGRES_TEST_URL%%:*}://…@${POSTGRES_TEST_URL##*@}" >&2

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

status=0
# Everything but the long multi-process tests, two at a time.
cargo nextest run --workspace --no-tests=pass \
  -E 'not (binary(processes) | binary(crash) | binary(postgres_restart))' "$@" || status=1
# Then those, alone: they measure a file shared by several processes, and
# the restart test restarts the server the others use.
cargo nextest run --workspace --no-tests=pass --test-threads 1 \
  -E 'binary(processes) | binary(crash) | binary(postgres_restart)' "$@" || status=1
# nextest does not run doctests.
timeout --kill-after=10s 600s cargo test --workspace --doc "$@" || status=1
exit "$status"
