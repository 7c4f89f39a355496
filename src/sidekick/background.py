"""The daemon's background threads, with one lifecycle and one health report.

The list watcher, the exit bell and the container-exit listener each run a
thread of their own. Each is a :class:`BackgroundTask`: it starts, stops (its
thread joined within a bound), says whether its thread is alive, and when it
last showed life. The daemon's :class:`Keeper` checks them every loop, as
huey's consumer checks its workers: a thread that died is logged, reported in
the heartbeat (so ``sidekick check`` is unhealthy meanwhile) and started again,
backing off while it keeps dying.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

STOP_TIMEOUT = 5.0
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0


class BackgroundTask(Protocol):
    """A thread the daemon starts, checks, restarts and stops."""

    @property
    def name(self) -> str:
        """A short name for logs and the heartbeat."""
        ...

    @property
    def alive(self) -> bool:
        """True while the thread runs: False before start, after stop, and once it died."""
        ...

    @property
    def heartbeat_at(self) -> float | None:
        """The monotonic time of its last sign of life; None for one that only waits for events."""
        ...

    def start(self) -> None:
        """Start the thread (again, after it died or stopped)."""
        ...

    def stop(self) -> None:
        """Ask the thread to end and join it within a bound."""
        ...


class Worker:
    """The thread under a background task: runs ``loop`` until it returns or raises.

    ``loop`` ends when :attr:`stopping` is set; :meth:`beat` records a sign of
    life, and :meth:`wait` is a sleep that a stop cuts short.
    """

    def __init__(
        self, name: str, loop: Callable[[], None], *, clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._loop = loop
        self._clock = clock
        self._thread: threading.Thread | None = None
        self.heartbeat_at: float | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self.stopping.clear()
        self.beat()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.stopping.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("%s did not stop within %.0f s", self.name, timeout)

    def beat(self) -> None:
        self.heartbeat_at = self._clock()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on a stop; True once stopping."""
        return self.stopping.wait(seconds)

    def _main(self) -> None:
        try:
            self._loop()
        except Exception:
            logger.exception("%s thread died", self.name)


class OnWorker:
    """``name``, ``alive`` and ``heartbeat_at`` of a task whose thread is the Worker ``_worker``."""

    _worker: Worker

    @property
    def name(self) -> str:
        return self._worker.name

    @property
    def alive(self) -> bool:
        return self._worker.alive

    @property
    def heartbeat_at(self) -> float | None:
        return self._worker.heartbeat_at


@dataclass
class _Restarts:
    count: int = 0
    delay: float = 0.0
    next_at: float = 0.0


@dataclass
class ThreadHealth:
    """What the heartbeat says about the background threads."""

    beats: dict[str, float] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)


class Keeper:
    """Starts the background tasks, restarts any whose thread died, stops them all."""

    def __init__(
        self,
        tasks: Sequence[BackgroundTask],
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        first_delay: float = FIRST_RESTART_DELAY,
    ) -> None:
        self.tasks = list(tasks)
        self._clock = clock
        self._wall_clock = wall_clock
        self._first_delay = first_delay
        self._restarts = {task.name: _Restarts() for task in self.tasks}
        self._running = False

    def start(self) -> None:
        self._running = True
        for task in self.tasks:
            task.start()

    def stop(self) -> None:
        self._running = False
        for task in self.tasks:
            task.stop()

    def check(self) -> ThreadHealth:
        """Restart the dead tasks that are due, and report on every task."""
        now = self._clock()
        dead = [task for task in self.tasks if self._running and not task.alive]
        for task in dead:
            self._restart_if_due(task, now)
        for task in self.tasks:
            if task not in dead and now >= self._restarts[task.name].next_at:
                # Alive past its last backoff: the next death restarts at once again.
                self._restarts[task.name].delay = 0.0
        return ThreadHealth(
            beats=self._beats(now),
            dead=[task.name for task in dead if not task.alive],
            restarts={name: r.count for name, r in self._restarts.items() if r.count},
        )

    def _restart_if_due(self, task: BackgroundTask, now: float) -> None:
        restarts = self._restarts[task.name]
        if now < restarts.next_at:
            return
        restarts.count += 1
        restarts.delay = min(max(restarts.delay * 2, self._first_delay), MAX_RESTART_DELAY)
        restarts.next_at = now + restarts.delay
        logger.error(
            "%s thread is not running; starting it again (restart %d)", task.name, restarts.count
        )
        task.stop()
        try:
            task.start()
        except Exception:
            logger.exception("%s could not be started again", task.name)

    def _beats(self, now: float) -> dict[str, float]:
        """Each task's last sign of life as wall-clock time, for readers in other processes."""
        wall = self._wall_clock()
        return {
            task.name: wall - (now - beat)
            for task in self.tasks
            if (beat := task.heartbeat_at) is not None
        }
