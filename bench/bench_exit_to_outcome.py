"""Exit-to-outcome: from an agent's end to its row reading Complete in priorities.csv.

A real daemon (`sidekick run`) runs one project at a time; each agent waits for
a release file and exits 0 when it appears. Each try creates the release file
and polls the CSV until the row reads Complete. The agent poll safety net runs
every 2 s, so a median well under that is the exit bell at work. Last line:
median and p95 over 20 tries.
"""

from __future__ import annotations

import time
from pathlib import Path

from _common import HEADER, daemon_process, median_p95, save_by_rename, scratch, write_config
from sidekick.models import ProjectStatus
from sidekick.priorities.csv_file import CsvPrioritySource

TRIES = 20
WAIT = ["sh", "-c", "while [ ! -e release ]; do sleep 0.005; done"]


def status(csv: Path, name: str) -> ProjectStatus | None:
    project = CsvPrioritySource(csv).load().by_name().get(name)
    return None if project is None else project.status


def wait_for_status(csv: Path, name: str, wanted: ProjectStatus, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while status(csv, name) is not wanted:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{name}: not {wanted.value} within {timeout} s")
        time.sleep(0.002)


def main() -> None:
    root = scratch("exit")
    names = [f"p{i:02d}" for i in range(TRIES)]
    config = write_config(root, names, WAIT, capacity={"max_agents": 1, "gpu_slots": 0})
    csv = root / "priorities.csv"
    rows = "".join(f"{name},{i},Pending,,,,,,\n" for i, name in enumerate(names))
    save_by_rename(csv, HEADER + rows)
    samples = []
    with daemon_process(config):
        for name in names:
            wait_for_status(csv, name, ProjectStatus.IN_PROGRESS, timeout=20)
            time.sleep(0.3)
            started = time.perf_counter()
            (root / "projects" / name / "release").touch()
            wait_for_status(csv, name, ProjectStatus.COMPLETE, timeout=20)
            samples.append((time.perf_counter() - started) * 1000)
    median, p95 = median_p95(samples)
    print(f"exit-to-outcome (n={len(samples)}): median {median:.1f} ms p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
