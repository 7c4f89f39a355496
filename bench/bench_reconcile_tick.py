"""One reconcile tick with 10,000 projects and 100 live agents: median of 20 ticks.

Real parts: a 10,000-row priorities.csv, a tmux server with 100 live agent
sessions, the SQLite state store. The list does not change between ticks, so
a tick is: read and hash the file, list the agents, plan, act on nothing.

``--against DIR`` measures another checkout too (``git worktree add DIR
COMMIT``), in alternating rounds of the same run, so both see the same load on
a shared machine; it prints both medians and their ratio. CPU time is printed
beside wall time because the wall clock of a loaded machine is mostly noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import HEADER, kill_tmux, save_by_rename, scratch, write_config
from sidekick.config import load_config
from sidekick.daemon import Daemon

PROJECTS = 10_000
LIVE = 100
TICKS = 20
HERE = Path(__file__).resolve()


def measure() -> dict[str, float]:
    """Medians of one tick in this interpreter's sidekick: wall and CPU milliseconds."""
    root = scratch("tick")
    names = [f"project-{i:05d}" for i in range(PROJECTS)]
    config_path = write_config(
        root, names, ["sleep", "3600"], capacity={"max_agents": LIVE, "gpu_slots": 0}
    )
    rows = "".join(
        f'{n},{i % 97},Pending,,,"Next step for {n}, carefully",,no,\n' for i, n in enumerate(names)
    )
    save_by_rename(root / "priorities.csv", HEADER + rows)
    daemon = Daemon(load_config(config_path, environ={}))
    try:
        for _ in range(3):
            daemon.reconciler.tick()
        live = len(daemon.parts.runner.list_agents())
        wall, cpu = [], []
        for _ in range(TICKS):
            started, used = time.perf_counter(), time.process_time()
            daemon.reconciler.tick()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - used) * 1000)
    finally:
        _end_agents(root / "tmux.sock")
    return {"live": live, "wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def _end_agents(socket: Path) -> None:
    """End the agents and their tmux server with what the measured tree's runner offers."""
    try:
        kill_tmux(socket)
    except AttributeError:
        # An older tree's runner, whose agents still ended with their tmux server.
        argv = ["tmux", "-S", str(socket), "kill-server"]
        subprocess.run(argv, capture_output=True, check=False)


def measure_in(tree: Path) -> dict[str, float]:
    """One measurement of the checkout at ``tree``, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    # This script's harness runs over the other tree's package: only the product differs.
    code = (
        f"import sys, json; sys.path[:0] = [{str(HERE.parent)!r}];"
        "from bench_reconcile_tick import measure; print(json.dumps(measure()))"
    )
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(other: Path, rounds: int) -> None:
    ours = HERE.parents[1]
    samples: dict[str, list[dict[str, float]]] = {"this tree": [], str(other): []}
    for _ in range(rounds):
        samples["this tree"].append(measure_in(ours))
        samples[str(other)].append(measure_in(other))
    medians = {
        name: {kind: statistics.median(s[kind] for s in runs) for kind in ("wall", "cpu")}
        for name, runs in samples.items()
    }
    for name, median in medians.items():
        print(
            f"{name}: reconcile tick ({PROJECTS} projects, {LIVE} live agents): "
            f"median {median['wall']:.1f} ms wall, {median['cpu']:.1f} ms CPU "
            f"({rounds} rounds of {TICKS} ticks)"
        )
    mine, theirs = medians["this tree"], medians[str(other)]
    print(
        f"ratio this/other: {mine['wall'] / theirs['wall']:.2f} wall, "
        f"{mine['cpu'] / theirs['cpu']:.2f} CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to measure alongside")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds with --against")
    args = parser.parse_args()
    if args.against is not None:
        compare(args.against.resolve(), args.rounds)
        return
    result = measure()
    print(
        f"reconcile tick ({PROJECTS} projects, {result['live']:.0f} live agents): "
        f"median {result['wall']:.1f} ms (CPU {result['cpu']:.1f} ms) (n={TICKS})"
    )


if __name__ == "__main__":
    main()
