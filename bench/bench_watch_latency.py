"""Save-to-list latency: from a save by rename to CsvPrioritySource reporting the new list.

Each save writes a temp file beside priorities.csv, then the clock starts just
before ``os.replace``; it stops inside ``on_change`` once ``load()`` returns a
list whose changed row holds the new value. Run for both event backends (the
ctypes inotify path Linux uses, and watchdog's observer that macOS and Windows
use, forced here on Linux), with the stat safety net out of reach, and for
polling with a short interval; idle CPU of a watcher in auto mode with the
default 1 s poll interval is measured over a few seconds.

    .venv/bin/python bench/bench_watch_latency.py [--saves 50] [--compare-watchdog]

``--compare-watchdog`` also measures the raw event latency (os.replace to the
callback, no debounce, no load) of watchdog's InotifyObserver against the
ctypes inotify the watcher uses, and their idle CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.watch import FileWatcher, InotifyDirectory

ROWS = 200
TIMEOUT = 5.0
IDLE_SECONDS = 3.0
PHASE_JITTER = 0.05


def csv_text(priority: int) -> str:
    lines = ["Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model"]
    lines.append(f"Target,{priority},Pending,,,ship it,2030-01-01,no,")
    lines += [f"Project {i},{i + 10},Pending,,,,,no," for i in range(ROWS - 1)]
    return "\n".join(lines) + "\n"


class Probe:
    """on_change: load the list and note when it shows the awaited priority."""

    def __init__(self, source: CsvPrioritySource) -> None:
        self.source = source
        self.expected = -1
        self.arrived = threading.Event()
        self.arrived_at = 0.0

    def __call__(self, version: str) -> None:
        snapshot = self.source.load()
        if snapshot.by_name()["Target"].priority == self.expected:
            self.arrived_at = time.perf_counter()
            self.arrived.set()


def save_and_time(path: Path, probe: Probe, priority: int) -> float:
    temp = path.with_name(".priorities.csv.save")
    temp.write_text(csv_text(priority))
    probe.expected = priority
    probe.arrived.clear()
    # Saves come at any moment of a poll period, not right after the last event.
    time.sleep(random.uniform(0, PHASE_JITTER))
    started = time.perf_counter()
    os.replace(temp, path)
    if not probe.arrived.wait(TIMEOUT):
        raise SystemExit(f"no event within {TIMEOUT}s for save {priority}")
    return (probe.arrived_at - started) * 1000


def measure(directory: Path, mode: str, poll_interval: float, saves: int) -> list[float]:
    path = directory / "priorities.csv"
    path.write_text(csv_text(0))
    probe = Probe(CsvPrioritySource(path))
    watcher = FileWatcher(path, probe, mode=mode, poll_interval=poll_interval)
    watcher.start()
    try:
        return [save_and_time(path, probe, i) for i in range(1, saves + 1)]
    finally:
        watcher.stop()


def idle_cpu_percent(start: Callable[[], Callable[[], None]]) -> float:
    """Share of one core the process uses while what start() started sits idle."""
    stop = start()
    try:
        time.sleep(0.2)
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        return (time.process_time() - cpu) / (time.monotonic() - wall) * 100
    finally:
        stop()


def idle_watcher(directory: Path) -> Callable[[], None]:
    path = directory / "idle.csv"
    path.write_text(csv_text(0))
    watcher = FileWatcher(path, lambda _v: None, mode="auto", poll_interval=1.0)
    watcher.start()
    return watcher.stop


def summary(label: str, latencies: list[float]) -> str:
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    median = statistics.median(latencies)
    figures = f"median {median:.1f} ms p95 {p95:.1f} ms"
    return f"save-to-list latency ({label}, n={len(latencies)}): {figures}"


# --- raw event latency: watchdog against ctypes inotify ---------------------------------


def raw_latency_ctypes(directory: Path, saves: int, outside: Path | None) -> list[float]:
    path = directory / "raw.csv"
    events = InotifyDirectory(directory)
    try:
        wait = lambda: wait_ctypes(events, path.name)  # noqa: E731
        return [raw_save(path, i, wait, outside) for i in range(saves)]
    finally:
        events.close()


def wait_ctypes(events: InotifyDirectory, name: str) -> None:
    poller = select.poll()
    poller.register(events.fileno(), select.POLLIN)
    while True:
        poller.poll(int(TIMEOUT * 1000))
        if any(e.name == name for e in events.read()):
            return


def raw_save(path: Path, i: int, wait: Callable[[], None], outside: Path | None) -> float:
    temp = path.with_name(".raw.save")
    temp.write_text(csv_text(i))
    if outside is not None:
        # An unrelated file leaves the directory just before the save (an IN_MOVED_FROM
        # nothing pairs with: a file moved away, an editor's backup moved to the trash).
        aside = path.with_name(f"old-{i}.bak")
        aside.write_text("old")
        os.rename(aside, outside / aside.name)
    started = time.perf_counter()
    os.replace(temp, path)
    wait()
    return (time.perf_counter() - started) * 1000


def raw_latency_watchdog(directory: Path, saves: int, outside: Path | None) -> list[float]:
    path = directory / "raw.csv"
    seen = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if os.fsdecode(getattr(event, "dest_path", "") or event.src_path) == str(path):
                seen.set()

    observer = InotifyObserver()
    observer.schedule(Handler(), str(directory))
    observer.start()
    try:
        return [raw_save(path, i, lambda: wait_event(seen), outside) for i in range(saves)]
    finally:
        observer.stop()
        observer.join()


def wait_event(seen: threading.Event) -> None:
    if not seen.wait(TIMEOUT):
        raise SystemExit("watchdog delivered no event")
    seen.clear()


def idle_watchdog(directory: Path) -> Callable[[], None]:
    observer = InotifyObserver()
    observer.schedule(FileSystemEventHandler(), str(directory))
    observer.start()

    def stop() -> None:
        observer.stop()
        observer.join()

    return stop


def compare_watchdog(directory: Path, saves: int) -> None:
    outside = directory.parent / f"{directory.name}-outside"
    outside.mkdir()
    runs = (("ctypes inotify", raw_latency_ctypes), ("watchdog", raw_latency_watchdog))
    for label, run in runs:
        for case, away in (("plain save", None), ("save after a file moved out", outside)):
            latencies = run(directory, saves, away)
            p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
            median = statistics.median(latencies)
            print(
                f"raw event latency ({label}, {case}): median {median:.2f} ms "
                f"p95 {p95:.2f} ms max {max(latencies):.2f} ms"
            )
    shutil.rmtree(outside)
    idle = idle_cpu_percent(lambda: idle_watchdog(directory))
    print(f"idle CPU (watchdog InotifyObserver): {idle:.3f} %")
    threads = threading.active_count()
    stop = idle_watchdog(directory)
    print(f"threads started: watchdog {threading.active_count() - threads}, ", end="")
    stop()
    threads = threading.active_count()
    stop = idle_watcher(directory)
    print(f"FileWatcher {threading.active_count() - threads}")
    stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--compare-watchdog", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sidekick-bench-watch-") as scratch:
        directory = Path(scratch)
        if args.compare_watchdog:
            compare_watchdog(directory, args.saves)
        inotify = measure(directory, "inotify", 3600.0, args.saves)
        watchdog = measure(directory, "watchdog", 3600.0, args.saves)
        poll = measure(directory, "poll", args.poll_interval, args.saves)
        idle = idle_cpu_percent(lambda: idle_watcher(directory))
    poll_label = f"poll every {args.poll_interval * 1000:.0f} ms"
    print(summary("watchdog observer", watchdog))
    print(summary(poll_label, poll))
    print(f"idle CPU of a watcher (auto, 1 s stat safety net): {idle:.3f} % of a core")
    print(
        f"{summary('inotify', inotify)}; {summary('watchdog observer', watchdog)}; "
        f"{summary(poll_label, poll)}; idle CPU {idle:.3f} %"
    )


if __name__ == "__main__":
    main()
