"""Heartbeat file and the verdict of ``sidekick check`` (the container's HEALTHCHECK).

The daemon rewrites one small JSON file every loop; ``sidekick check`` reads
it and decides, without importing anything heavy, so it stays fast enough to
run every few seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sidekick import versioned

HEARTBEAT_NAME = "heartbeat.json"
# The file's major format: a reader refuses a newer one and reads every older one.
HEARTBEAT_FORMAT = 1
# Upper bounds (seconds) of the save-to-start latency histogram's buckets.
SAVE_TO_START_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Heartbeat:
    pid: int
    loop_at: float
    watcher_mode: str = ""
    # Background threads: wall time of each one's last beat, those found dead, restarts.
    threads: dict[str, float] = field(default_factory=dict)
    dead_threads: list[str] = field(default_factory=list)
    thread_restarts: dict[str, int] = field(default_factory=dict)
    last_reconcile_at: float | None = None
    last_reconcile_ok: bool = True
    # Seconds the last reconcile took (the dashboard's /metrics shows it).
    last_reconcile_seconds: float = 0.0
    last_error: str = ""
    degraded: list[str] = field(default_factory=list)
    stopped: bool = False
    # The last resource sample of each live agent by key (see sidekick.agent_usage).
    agent_usage: dict[str, dict[str, float]] = field(default_factory=dict)
    # Save-to-start latency since the daemon started: per bucket of SAVE_TO_START_BUCKETS
    # (not cumulative; the last counts what is above every bound), their sum and count.
    save_to_start_buckets: list[int] = field(default_factory=list)
    save_to_start_sum: float = 0.0
    save_to_start_count: int = 0

    def observe_save_to_start(self, seconds: float) -> None:
        """One agent start caused by a save of the list, ``seconds`` after the save was seen."""
        if len(self.save_to_start_buckets) != len(SAVE_TO_START_BUCKETS) + 1:
            self.save_to_start_buckets = [0] * (len(SAVE_TO_START_BUCKETS) + 1)
        index = next(
            (i for i, bound in enumerate(SAVE_TO_START_BUCKETS) if seconds <= bound),
            len(SAVE_TO_START_BUCKETS),
        )
        self.save_to_start_buckets[index] += 1
        self.save_to_start_sum += seconds
        self.save_to_start_count += 1


def heartbeat_path(state_dir: Path) -> Path:
    return state_dir / HEARTBEAT_NAME


def write_heartbeat(path: Path, beat: Heartbeat) -> None:
    """Replace the file atomically so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(versioned.dump(beat, HEARTBEAT_FORMAT), encoding="utf-8")
    os.replace(tmp, path)


def read_heartbeat(path: Path) -> Heartbeat | None:
    """The last beat, None before the first; a file no version can read is a StateFileError."""
    return versioned.read(Heartbeat, path, HEARTBEAT_FORMAT)


def verdict(beat: Heartbeat | None, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, why): a fresh loop beat, every background thread alive and beating, and a
    last reconcile that worked."""
    now = time.time() if now is None else now
    if beat is None:
        return False, "no heartbeat yet: is the daemon running?"
    if beat.stopped:
        return False, "the daemon has stopped"
    problems = []
    if now - beat.loop_at > max_age:
        problems.append(f"daemon loop silent for {now - beat.loop_at:.0f} s")
    problems.extend(_thread_problems(beat, max_age, now))
    if not beat.last_reconcile_ok:
        problems.append(f"last reconcile failed: {beat.last_error}")
    problems.extend(f"degraded: {d}" for d in beat.degraded)
    if problems:
        return False, "; ".join(problems)
    return True, f"healthy (pid {beat.pid})"


def _thread_problems(beat: Heartbeat, max_age: float, now: float) -> list[str]:
    problems = []
    for name in beat.dead_threads:
        restarts = beat.thread_restarts.get(name, 0)
        problems.append(f"{name} thread died (started again {restarts} time(s) so far)")
    for name, at in sorted(beat.threads.items()):
        if name not in beat.dead_threads and now - at > max_age:
            problems.append(f"{name} thread silent for {now - at:.0f} s")
    return problems
