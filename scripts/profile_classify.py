#!/usr/bin/env python3
"""Puts each sample of `perf script` output (stacks, leaf first) in one
category by the frames on its stack, and prints microseconds of CPU per turn
by category for each profile given, with the first profile's excess over the
second. Used by scripts/profile_today.sh."""
import argparse
import collections

# First match wins, in this order: a sample inside SQLite's commit is
# commit time whoever called it; statement execution is the rest of
# sqlite3_step; then the Rust side, most specific first.
RULES = [
    ("setup (migrations, files)", ("Migrator", "migrat", "remove_database", "dl_main", "clap_builder")),
    ("SQLite: commit (WAL)", ("sqlite3VdbeHalt", "pagerWalFrames")),
    ("SQLite: statements", ("sqlite3_step", "sqlite3VdbeExec")),
    ("SQLite: prepare", ("sqlite3LockAndPrepare", "sqlite3Prepare")),
    ("binding values", ("bindable", "bind_parameter", "sqlite3_bind")),
    ("caller builds its input", ("today_workload::tracker", "today_workload::embedding_of", "benchmark_turn")),
    ("JSON to text", ("serde_json",)),
    ("module: building statements", ("sea_query", "TurnPlan", "ExtrasPlan", "insert_row", "sql_cache")),
    ("module: writer, checks, rows", ("interview_persistence",)),
    ("tokio and sqlx threads", ("tokio", "sqlx")),
]


def samples(path):
    frames = None
    with open(path, encoding="utf-8", errors="replace") as stacks:
        for line in stacks:
            if not line.strip():
                if frames is not None:
                    yield frames
                frames = None
            elif not line[0].isspace():
                frames = []
            elif frames is not None:
                parts = line.split(None, 1)
                frames.append(parts[1].strip() if len(parts) > 1 else "")
    if frames is not None:
        yield frames


def category(frames):
    stack = "\n".join(frames)
    for name, needles in RULES:
        if any(needle in stack for needle in needles):
            return name
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frequency", type=float, required=True)
    parser.add_argument("--turns", type=int, required=True)
    parser.add_argument("profiles", nargs="+", help="name=path of perf script output")
    args = parser.parse_args()
    per_turn = {}
    for named in args.profiles:
        name, path = named.split("=", 1)
        counts = collections.Counter(category(frames) for frames in samples(path))
        per_turn[name] = {k: v / args.frequency / args.turns * 1e6 for k, v in counts.items()}
    names = list(per_turn)
    rows = [name for name, _ in RULES] + ["other"]
    header = f"{'µs of CPU per turn':32s}" + "".join(f"{n:>10s}" for n in names)
    if len(names) == 2:
        header += f"{'excess':>10s}"
    print(header)
    for row in rows + ["total"]:
        values = [
            sum(p.values()) if row == "total" else p.get(row, 0.0) for p in per_turn.values()
        ]
        line = f"{row:32s}" + "".join(f"{v:10.1f}" for v in values)
        if len(values) == 2:
            line += f"{values[0] - values[1]:+10.1f}"
        print(line)
    if len(names) == 2:
        totals = [sum(p.values()) for p in per_turn.values()]
        print(f"raw's CPU per turn / the module's: {totals[1] / totals[0]:.2f}")


if __name__ == "__main__":
    main()
