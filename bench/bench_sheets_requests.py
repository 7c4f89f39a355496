"""Sheets requests per reconcile at the local stand-in: 1,000 rows, 100 changed.

One reconcile is a ``write_back`` of 100 updates (a fresh read plus one
batched update) whose snapshot serves as the reconcile's list. The real
gspread and google-auth clients talk to ``tests/sheets_server.py`` on
127.0.0.1. Between runs the bench waits for the default quota's token bucket
(60 requests a minute) to refill, so the times are the requests' own, not pacing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sheets_server import SheetsStandIn, write_service_account_key

from _common import scratch
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities.sheets import SheetsPrioritySource

ROWS = 1_000
CHANGED = 100
RUNS = 7
SHEET_ID = "bench-sheet"
TAB = "Priorities"
HEADER = ["Project", "Priority", "Status", "Agent", "Last Update", "Next Action", "Deadline"]
STATUSES = (ProjectStatus.IN_PROGRESS, ProjectStatus.COMPLETE)


def rows() -> list[list[str]]:
    body = [
        [f"project-{i:04d}", str(i % 97), "Pending", "", "", f"step {i}", "2026-12-01"]
        for i in range(ROWS)
    ]
    return [HEADER, *body]


def updates(run: int) -> list[RowUpdate]:
    status = STATUSES[run % 2]
    step = ROWS // CHANGED
    return [
        RowUpdate(f"project-{i:04d}", status, f"sidekick-project-{i:04d}", f"run {run}")
        for i in range(run % step, ROWS, step)
    ]


def reconcile(server: SheetsStandIn, source: SheetsPrioritySource, run: int) -> tuple[int, float]:
    server.reset_counts()
    started = time.perf_counter()
    result = source.write_back(updates(run))
    elapsed = (time.perf_counter() - started) * 1000
    assert result.snapshot is not None and len(result.snapshot.projects) == ROWS
    assert len(result.written) == CHANGED, result
    return server.sheets_requests(), elapsed


def main() -> None:
    with SheetsStandIn() as server:
        os.environ.update(server.proxy_environment())
        server.add_sheet(SHEET_ID, TAB, rows())
        key = write_service_account_key(scratch("sheets") / "key.json", server)
        source = SheetsPrioritySource(SHEET_ID, TAB, key, api_base_url=server.base_url)
        source.load()  # the one-off token exchange, outside the figures
        counts, times = [], []
        for run in range(RUNS):
            time.sleep(2.2)  # refill the bucket: 2 tokens at 58 a minute
            count, elapsed = reconcile(server, source, run)
            counts.append(count)
            times.append(elapsed)
    spread = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    print(
        f"sheets requests per reconcile ({ROWS} rows, {CHANGED} changed): {spread}; "
        f"reconcile median {statistics.median(times):.0f} ms (n={RUNS}, local stand-in)"
    )


if __name__ == "__main__":
    main()
