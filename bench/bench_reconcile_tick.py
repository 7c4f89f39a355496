"""One reconcile tick with 10,000 projects and 100 live agents: median of 20 ticks.

Real parts: a 10,000-row priorities.csv, a tmux server with 100 live agent
sessions, the SQLite state store. The list does not change between ticks, so
a tick is: read and hash the file, list the agents, plan, act on nothing.
"""

from __future__ import annotations

import statistics
import time

from _common import HEADER, kill_tmux, save_by_rename, scratch, write_config
from sidekick.config import load_config
from sidekick.daemon import Daemon

PROJECTS = 10_000
LIVE = 100
TICKS = 20


def main() -> None:
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
        samples = []
        for _ in range(TICKS):
            started = time.perf_counter()
            daemon.reconciler.tick()
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        kill_tmux(root / "tmux.sock")
    print(
        f"reconcile tick ({PROJECTS} projects, {live} live agents): "
        f"median {statistics.median(samples):.1f} ms (n={TICKS})"
    )


if __name__ == "__main__":
    main()
