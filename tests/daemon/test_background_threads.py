"""The daemon's background threads: one lifecycle, a heartbeat each, restarted when they die."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sidekick.background import Keeper, OnWorker, Worker
from sidekick.cli import main
from sidekick.config import load_config
from sidekick.daemon import Daemon, Parts
from sidekick.health import Heartbeat, heartbeat_path, read_heartbeat
from sidekick.priorities.memory import InMemorySource
from sidekick.priorities.watch import FileWatcher
from sidekick.runners.bell import ExitBell, bell_path, ring
from sidekick.runners.memory import InMemoryRunner
from sidekick.state import StateStore
from tests.polling import wait_until


class Breakable(OnWorker):
    """A background task (the in-memory kind) whose thread dies while ``broken`` is set."""

    def __init__(self, name: str = "breakable") -> None:
        self.broken = threading.Event()
        self.starts = 0
        self._worker = Worker(name, self._loop)

    def start(self) -> None:
        self.starts += 1
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def _loop(self) -> None:
        while not self._worker.wait(0.02):
            if self.broken.is_set():
                raise RuntimeError("the thread met a bug")
            self._worker.beat()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_thread_is_reported_and_started_again() -> None:
    task = Breakable()
    keeper = Keeper([task])
    keeper.start()
    try:
        assert keeper.check().dead == [] and "breakable" in keeper.check().beats
        task.broken.set()
        wait_until(lambda: not task.alive, what="the thread died")
        task.broken.clear()
        health = keeper.check()
        assert health.dead == [] and health.restarts == {"breakable": 1}
        assert task.alive and task.starts == 2
    finally:
        keeper.stop()
    assert not task.alive


def test_a_thread_that_keeps_dying_is_restarted_with_a_growing_delay() -> None:
    clock = Clock()
    task = Breakable()
    task.broken.set()
    keeper = Keeper([task], clock=clock, first_delay=1.0)
    keeper.start()
    try:
        starts, dead = [], []
        for _ in range(8):
            wait_until(lambda: not task.alive, what="the thread died")
            dead.append(keeper.check().dead)
            starts.append(task.starts)
            clock.now += 1.0
        # Restarted at once, then after 1 s, 2 s, 4 s: starts at checks 0, 1, 3, 7.
        assert starts == [2, 3, 3, 4, 4, 4, 4, 5]
        assert dead[2] == dead[4] == ["breakable"]
    finally:
        keeper.stop()


def test_a_stopped_keeper_restarts_nothing() -> None:
    task = Breakable()
    keeper = Keeper([task])
    keeper.start()
    keeper.stop()
    assert keeper.check().dead == [] and task.starts == 1


@dataclass
class Running:
    """A daemon running on a thread, with a breakable background task and an in-memory runner."""

    daemon: Daemon
    breakable: Breakable
    runner: InMemoryRunner


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    config_path = tmp_path / "config.yaml"
    config_path.write_text("daemon:\n  state_dir: state\n  heartbeat_max_age: 30\n")
    config = load_config(config_path, environ={})
    breakable = Breakable()
    bell = ExitBell(bell_path(config.daemon.state_dir), lambda: None)
    runner = InMemoryRunner()
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    parts = Parts(InMemorySource(), runner, store, exit_listeners=[bell, breakable])
    daemon = Daemon(config, parts)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    yield Running(daemon, breakable, runner)
    daemon.request_stop()
    thread.join(10)
    assert not bell.alive and not breakable.alive


def beat_of(tmp_path: Path) -> Heartbeat:
    """The daemon's last heartbeat; a pid-0 stand-in before the first."""
    return read_heartbeat(heartbeat_path(tmp_path / "state")) or Heartbeat(pid=0, loop_at=0.0)


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(tmp_path / "config.yaml")])
    out, err = capsys.readouterr()
    return code, (out + err).strip()


def test_sidekick_check_is_unhealthy_while_a_thread_is_dead_and_the_daemon_restarts_it(
    tmp_path: Path, running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    breakable = running.breakable
    wait_until(lambda: {"exit-bell", "breakable"} <= beat_of(tmp_path).threads.keys())
    assert check(tmp_path, capsys)[0] == 0
    breakable.broken.set()
    wait_until(lambda: beat_of(tmp_path).dead_threads == ["breakable"], what="reported dead")
    code, why = check(tmp_path, capsys)
    assert code == 1 and "breakable thread died" in why
    breakable.broken.clear()
    wait_until(lambda: not beat_of(tmp_path).dead_threads, timeout=10, what="restarted")
    beat = beat_of(tmp_path)
    assert beat.thread_restarts["breakable"] >= 1 and breakable.alive
    assert check(tmp_path, capsys)[0] == 0


def test_a_degraded_runtime_reaches_the_heartbeat_through_the_runner_protocol(
    tmp_path: Path, running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    running.runner.degraded_runtimes = ["docker engine: connection refused"]
    wait_until(lambda: beat_of(tmp_path).degraded, timeout=15, what="degraded in the heartbeat")
    code, why = check(tmp_path, capsys)
    assert code == 1 and "degraded: docker engine: connection refused" in why


def test_the_real_watcher_and_bell_work_again_after_the_keeper_restarts_them(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "priorities.csv"
    csv.write_text("Project,Priority,Status\n")
    saves: list[str] = []
    rings = threading.Semaphore(0)
    watcher = FileWatcher(csv, saves.append, debounce=0.01)
    bell = ExitBell(bell_path(tmp_path / "state"), rings.release)
    keeper = Keeper([watcher, bell])
    keeper.start()
    try:
        for task in (watcher, bell):
            task.stop()  # as if its thread had ended
        assert sorted(keeper.check().restarts) == ["exit-bell", f"watch:{csv.name}"]
        assert watcher.alive and bell.alive
        csv.write_text("Project,Priority,Status\nalpha,1,Pending\n")
        wait_until(lambda: saves, what="the restarted watcher saw the save")
        assert ring(bell.path) and rings.acquire(timeout=5)
    finally:
        keeper.stop()
