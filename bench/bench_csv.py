"""Load + parse of a 10,000-row priorities.csv, and a write-back of 1,000 changed rows into it.

Each figure is the median of 10 runs on a fresh source, so no cache from an
earlier run helps. The write-back is measured as the daemon does it: right
after a load of the same bytes, then from bytes it has not seen (a person
saved in between).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from _common import HEADER, scratch
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities.csv_file import CsvPrioritySource

ROWS = 10_000
CHANGED = 1_000
RUNS = 10


def make_text() -> str:
    rows = (
        f'project-{i:05d},{i % 97},Pending,,,"Do step {i}, then ""check"" it",'
        f"2026-12-{1 + i % 28:02d},{'yes' if i % 10 == 0 else 'no'},default\n"
        for i in range(ROWS)
    )
    return HEADER + "".join(rows)


def updates() -> list[RowUpdate]:
    step = ROWS // CHANGED
    return [
        RowUpdate(
            f"project-{i:05d}",
            ProjectStatus.COMPLETE,
            f"sidekick-project-{i:05d}",
            "2026-11-23 12:00 UTC · complete ($0.0123)",
        )
        for i in range(0, ROWS, step)
    ]


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    path: Path = scratch("csv") / "priorities.csv"
    text = make_text()
    loads, warm, cold = [], [], []
    for _ in range(RUNS):
        path.write_text(text)
        loads.append(timed(CsvPrioritySource(path).load))
        path.write_text(text)
        source = CsvPrioritySource(path)
        source.load()
        warm.append(timed(lambda src=source: src.write_back(updates())))
        path.write_text(text)
        cold.append(timed(lambda: CsvPrioritySource(path).write_back(updates())))
    print(
        f"csv {ROWS} rows: load median {statistics.median(loads):.0f} ms; "
        f"write-back of {CHANGED} rows median {statistics.median(warm):.0f} ms after a load, "
        f"{statistics.median(cold):.0f} ms from unseen bytes (n={RUNS})"
    )


if __name__ == "__main__":
    main()
