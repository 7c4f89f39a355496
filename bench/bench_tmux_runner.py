"""TmuxRunner.start() and list_agents() with 100 live sessions.

Starts 100 agents (``sleep``) through the runner on a socket of its own, then
times 20 more starts (each one reaped again, so 100 stay live) and 20 lists.
Prints medians; the last line holds the figures. Kills its tmux server at the end.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sidekick.runners.base import LaunchSpec
from sidekick.runners.tmux import TmuxRunner

LIVE = 100
ROUNDS = 20


def spec(root: Path, index: int) -> LaunchSpec:
    key = f"sidekick-bench-{index}"
    return LaunchSpec(key, key, f"run-{index}", ("sleep", "600"), root, root / f"{key}.log")


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def wait_until_listed(runner: TmuxRunner, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(runner.list_agents()) < count:
        if time.monotonic() > deadline:
            sys.exit(f"only {len(runner.list_agents())} of {count} sessions came up")
        time.sleep(0.1)


def bench(root: Path, runner: TmuxRunner) -> None:
    first = [timed(partial(runner.start, spec(root, i))) for i in range(LIVE)]
    wait_until_listed(runner, LIVE)
    starts = []
    for extra in range(ROUNDS):
        starts.append(timed(partial(runner.start, spec(root, LIVE + extra))))
        runner.stop(spec(root, LIVE + extra).key, grace_seconds=5)
    lists = [timed(runner.list_agents) for _ in range(ROUNDS)]
    assert len(runner.list_agents()) == LIVE
    print(f"first {LIVE} starts: median {statistics.median(first):.1f} ms")
    print(
        f"tmux runner, {LIVE} live sessions, median of {ROUNDS}: "
        f"start {statistics.median(starts):.1f} ms, "
        f"list_agents {statistics.median(lists):.1f} ms"
    )


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="sk-bench-"))
    runner = TmuxRunner(root / "tmux" / "sock")
    try:
        bench(root, runner)
    finally:
        runner.end_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
