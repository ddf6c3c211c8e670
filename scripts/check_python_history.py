#!/usr/bin/env python3
"""Checks adoption's description of the Python system's schema history
(src/schema/python/) against the Python repository itself.

For every commit of the Python repository that changed its start-up
(src/persistence/migrations/, schema.sql, database.py's ALTERs), this runs
that commit's real start-up the way its database.py did — the migration
files in name order through executescript, a "duplicate column name"
failure swallowed, the coverage columns dropped (2026-01-30 … 02-12); or
schema.sql, then the ALTERs and the edge-type patch of its database.py —
and makes:

- a fresh file of each commit;
- a file made by each commit and then started by the newest;
- one file started by every commit in turn (a deployment that kept
  upgrading).

Each is handed to `interview-db init` (a copy of it), which must adopt it.
Prints one line per file and exits 1 if any was refused.

Usage: python3 scripts/check_python_history.py <Python repository (a git
directory or work tree)> [interview-db binary, default target/debug/interview-db]

The Python repository is not part of this one; fetch it
(michaelarutyunov/interview-system-v2) to run this.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

# The commits whose start-up differs, oldest first, and the ALTERs their
# database.py ran after schema.sql (from 2026-02-13 on).
EMBEDDING = "ALTER TABLE kg_nodes ADD COLUMN embedding BLOB"
QUOTES = "ALTER TABLE kg_nodes ADD COLUMN source_quotes TEXT DEFAULT '[]'"
VELOCITY = [
    "ALTER TABLE sessions ADD COLUMN %s %s" % column
    for column in [
        ("surface_velocity_peak", "REAL NOT NULL DEFAULT 0.0"),
        ("prev_surface_node_count", "INTEGER NOT NULL DEFAULT 0"),
        ("canonical_velocity_peak", "REAL NOT NULL DEFAULT 0.0"),
        ("prev_canonical_node_count", "INTEGER NOT NULL DEFAULT 0"),
        ("focus_history", "TEXT NOT NULL DEFAULT '[]'"),
    ]
]
COMMITS = [
    ("0f41d43", "migrations", [], False),
    ("a4d89e5", "migrations", [], False),
    ("30552b8", "migrations", [], False),
    ("86ac2b6", "migrations", [], False),
    ("a86cb56", "migrations+drop", [], False),
    ("e21aa81", "migrations+drop", [], False),
    ("6ff6ed9", "migrations+drop", [], False),
    ("8fcb3d5", "migrations+drop", [], False),
    ("196de95", "migrations+drop", [], False),
    ("dfb0683", "schema", [], False),
    ("6bdbef4", "schema", [EMBEDDING], False),
    ("7ff8365", "schema", [EMBEDDING], False),
    ("db2db1f", "schema", [EMBEDDING], False),
    ("6c48f5f", "schema", [EMBEDDING, QUOTES], False),
    ("21e4759", "schema", [EMBEDDING, QUOTES] + VELOCITY, False),
    ("04d9cfb", "schema", [EMBEDDING, QUOTES] + VELOCITY, False),
    ("fae55e1", "schema", [EMBEDDING, QUOTES] + VELOCITY, True),
]


def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], check=True,
                          capture_output=True, text=True).stdout


def start(repo, db, commit, kind, alters, patch):
    db.execute("PRAGMA foreign_keys = ON")
    if kind.startswith("migrations"):
        names = sorted(n for n in git(repo, "ls-tree", "--name-only", commit,
                                      "src/persistence/migrations/").split()
                       if n.endswith(".sql"))
        for name in names:
            try:
                db.executescript(git(repo, "show", "%s:%s" % (commit, name)))
            except sqlite3.OperationalError as e:
                if "duplicate column name" not in str(e):
                    raise
        if kind.endswith("+drop"):
            for table in ("sessions", "scoring_history"):
                columns = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
                if "coverage_score" in columns:
                    db.execute("ALTER TABLE %s DROP COLUMN coverage_score" % table)
    else:
        db.executescript(git(repo, "show", "%s:src/persistence/schema.sql" % commit))
        for alter in alters:
            try:
                db.execute(alter)
            except sqlite3.OperationalError:
                pass
        if patch:
            (sql,) = db.execute(
                "SELECT sql FROM sqlite_master WHERE type='table' AND name='kg_edges'").fetchone()
            if "'triggers'" not in sql and "'triggered_by'" in sql:
                db.execute("PRAGMA writable_schema = ON")
                db.execute("UPDATE sqlite_master SET sql = ? WHERE type='table' AND name='kg_edges'",
                           (sql.replace("'occurs_in', 'triggered_by',",
                                        "'occurs_in', 'triggered_by', 'triggers',"),))
                db.execute("PRAGMA writable_schema = OFF")
    db.commit()


def adopt(binary, path, workdir):
    copy = os.path.join(workdir, "adopt.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(copy + suffix):
            os.remove(copy + suffix)
    shutil.copy(path, copy)
    done = subprocess.run([binary, "init"], env={**os.environ, "DATABASE_PATH": copy},
                          capture_output=True, text=True)
    if done.returncode != 0:
        return False, done.stderr.strip().splitlines()[-1:] or ["(no output)"]
    report = json.loads(done.stdout)
    return report.get("status") == "healthy", [report.get("adoption", {}).get("recognised_as", "")]


def main(repo, binary):
    if os.path.isdir(os.path.join(repo, ".git")):
        repo = os.path.join(repo, ".git")
    workdir = tempfile.mkdtemp()
    files = []
    for i, (commit, kind, alters, patch) in enumerate(COMMITS):
        fresh = os.path.join(workdir, "fresh-%s.db" % commit)
        db = sqlite3.connect(fresh)
        start(repo, db, commit, kind, alters, patch)
        db.close()
        files.append(("made by %s" % commit, fresh))
        upgraded = os.path.join(workdir, "upgraded-%s.db" % commit)
        shutil.copy(fresh, upgraded)
        db = sqlite3.connect(upgraded)
        try:
            start(repo, db, *COMMITS[-1])
        except sqlite3.OperationalError as e:
            # The newest start-up fails on it: no deployment has this file.
            print("(none)   made by %s, started by the newest: its start-up fails (%s)"
                  % (commit, e))
            continue
        finally:
            db.close()
        files.append(("made by %s, started by the newest" % commit, upgraded))
    carried = os.path.join(workdir, "carried.db")
    db = sqlite3.connect(carried)
    for step in COMMITS:
        start(repo, db, *step)
    db.close()
    files.append(("started by every commit in turn", carried))
    refused = 0
    for label, path in files:
        ok, detail = adopt(binary, path, workdir)
        refused += not ok
        print("%-8s %s: %s" % ("adopted" if ok else "REFUSED", label, "; ".join(detail)))
    shutil.rmtree(workdir)
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "target/debug/interview-db")
