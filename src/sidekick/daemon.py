"""The long-running daemon: wiring, the main loop, signals, heartbeat, graceful stop.

All reconciles run on the main thread, one at a time. Everything else only
asks for one sooner: the list watcher on a save, the exit listeners when an
agent ends (the agent wrapper's bell, the engine's events), and two APScheduler
jobs as the safety net (an agent poll, the periodic reconcile). Signal handlers
only set a flag and raise the process's stop request (:mod:`sidekick.stopping`):
a wait inside a reconcile ends at once, the loop wakes, and the daemon stops
cleanly, leaving the agents running for the next start to adopt.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from sidekick import stopping
from sidekick.agent_usage import SAMPLE_SECONDS, UsageSampler
from sidekick.background import BackgroundTask, Keeper
from sidekick.config import Config, source_kind
from sidekick.health import Heartbeat, heartbeat_path, write_heartbeat
from sidekick.insight.auto import auto_investigations
from sidekick.models import Snapshot
from sidekick.planner import Start
from sidekick.priorities.base import LastGoodSource, PrioritySource
from sidekick.priorities.choose import build_source
from sidekick.priorities.watch import FileWatcher
from sidekick.production.requested import ProductionRequests
from sidekick.reconciler import Reconciler
from sidekick.runners.base import Runner
from sidekick.runners.choose import ExitListener, build_exit_listeners, build_runner
from sidekick.state import StateStore
from sidekick.status import build_report, write_report
from sidekick.web.action_requests import ActionRequests, Executor, execute_pending

logger = logging.getLogger(__name__)

LOOP_WAIT = 0.5
DEGRADED_CHECK_SECONDS = 5.0
AGENT_POLL_SECONDS = 2.0
RETRY_SECONDS = 2.0
# How often the daemon looks for actions confirmed on the dashboard.
DASHBOARD_REQUEST_SECONDS = 0.25


class Watcher(BackgroundTask, Protocol):
    def acknowledge(self, version: str) -> None: ...

    @property
    def mode_in_use(self) -> str | None: ...


class ListSaves:
    """When the watcher last saw the list saved, until a reconcile takes it (any thread)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None

    def saw(self) -> None:
        with self._lock:
            self._at = self._clock()

    def take(self) -> float | None:
        with self._lock:
            at, self._at = self._at, None
            return at


@dataclass
class Parts:
    """The daemon's collaborators; tests pass their own."""

    source: PrioritySource
    runner: Runner
    store: StateStore
    watcher: Watcher | None = None
    doorbell: threading.Event = field(default_factory=threading.Event)
    exit_listeners: list[ExitListener] = field(default_factory=list)
    saves: ListSaves = field(default_factory=ListSaves)


def build_parts(config: Config) -> Parts:
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    runner = build_runner(config)
    doorbell = threading.Event()
    listeners = build_exit_listeners(config, runner, doorbell.set)
    if source_kind(config) == "sheets":
        sheets = LastGoodSource(build_source(config))
        return Parts(sheets, runner, store, doorbell=doorbell, exit_listeners=listeners)
    csv = config.priority_source.csv
    saves = ListSaves()

    def on_save(_version: str) -> None:
        saves.saw()
        doorbell.set()

    watcher = FileWatcher(
        csv.path,
        on_save,
        mode=csv.watch,
        debounce=config.daemon.debounce,
        poll_interval=csv.poll_interval,
    )
    source = build_source(config, announce=watcher.acknowledge)
    return Parts(LastGoodSource(source), runner, store, watcher, doorbell, listeners, saves)


class Daemon:
    def __init__(self, config: Config, parts: Parts | None = None) -> None:
        self.config = config
        self.parts = parts or build_parts(config)
        self.reconciler = Reconciler(config, self.parts.source, self.parts.runner, self.parts.store)
        self._kick = self.parts.doorbell
        self._stop_requested = False
        self._beat = Heartbeat(pid=os.getpid(), loop_at=time.time())
        self._heartbeat_file = heartbeat_path(config.daemon.state_dir)
        self._scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        watcher = [self.parts.watcher] if self.parts.watcher is not None else []
        self._keeper = Keeper([*watcher, *self.parts.exit_listeners])
        self._finished_seen: set[str] = set()
        self._degraded_checked = 0.0
        self._runtimes_degraded: list[str] = []
        self._requests = ActionRequests(self.parts.store.path)
        self._production = ProductionRequests(config, self._requests, self.parts.store)
        self._usage = UsageSampler(self.parts.runner)
        # A deploy cut short is undone by the next one (its journal); its request is answered.
        self._requests.abandon_running("the daemon stopped while it was under way")

    # --- what other threads and signals may call ---------------------------------

    def kick(self) -> None:
        """Ask for a reconcile as soon as the loop is free."""
        self._kick.set()

    def request_stop(self) -> None:
        """Stop after the reconcile under way (for other threads and tests)."""
        self._stop_requested = True
        self._kick.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: a flag and a byte on the stop request's socket, nothing else."""
        self._stop_requested = True
        stopping.process_stop().request(signum)

    def _kick_on_stop(self) -> None:
        """Wake the loop once a signal asks for a stop (a handler cannot set an Event)."""
        stopping.process_stop().wait(None)
        self._kick.set()

    # --- the loop ------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self._start_background()
        logger.info("daemon started (pid %d, source %s)", self._beat.pid, self.parts.source.name)
        try:
            self.kick()
            while not self._stop_requested:
                if self._kick.wait(LOOP_WAIT):
                    self._kick.clear()
                    if not self._stop_requested:
                        self._tick()
                self._write_beat()
        finally:
            self._shutdown()
        return 0

    def run_once(self) -> None:
        """One reconcile and one heartbeat, for tests and ``sidekick reconcile``."""
        self._tick()
        self._write_beat()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            waker = threading.Thread(target=self._kick_on_stop, name="stop-waker", daemon=True)
            waker.start()

    def _start_background(self) -> None:
        self.config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
        self._keeper.start()
        interval = self.config.daemon.reconcile_interval
        if source_kind(self.config) == "sheets":
            interval = min(interval, self.config.priority_source.sheets.poll_interval)
        self._scheduler.add_job(self.kick, "interval", seconds=interval, id="reconcile")
        self._scheduler.add_job(
            self._poll_agents, "interval", seconds=AGENT_POLL_SECONDS, id="agent-poll"
        )
        # Off the reconcile's path: /proc and the engine's stats for the dashboard's Agents page.
        self._scheduler.add_job(
            self._sample_usage, "interval", seconds=SAMPLE_SECONDS, id="agent-usage"
        )
        self._scheduler.add_job(
            self._kick_for_requests, "interval", seconds=DASHBOARD_REQUEST_SECONDS, id="dashboard"
        )
        if self.config.insight.investigate == "auto":
            # Its own job: an investigation takes minutes, never a reconcile's time.
            check, every = auto_investigations(self.config).tick, self.config.insight.check_interval
            self._scheduler.add_job(check, "interval", seconds=every, id="auto-investigate")
        self._scheduler.start()

    def _poll_agents(self) -> None:
        """The safety net under the exit listeners: notice an agent's end missed by them."""
        try:
            agents = self.parts.runner.list_agents()
        except Exception as exc:
            logger.warning("agent poll failed: %s", exc)
            return
        finished = {key for key, agent in agents.items() if agent.finished}
        if finished - self._finished_seen:
            self.kick()
        live_keys = set(agents)
        self._finished_seen = finished & live_keys

    def _sample_usage(self) -> None:
        try:
            self._usage.sample()
        except Exception as exc:
            logger.warning("agent resource sample failed: %s", exc)

    def _kick_for_requests(self) -> None:
        if self._requests.has_pending():
            self.kick()

    def _answer_requests(self) -> None:
        """Actions confirmed on the dashboard, carried out here: only the daemon acts on agents."""
        state_dir, grace = self.config.daemon.state_dir, self.config.policy.stop_grace
        executor = Executor(
            self.parts.store, self.parts.runner, state_dir, grace, self._production.start
        )
        execute_pending(self._requests, executor)

    def _tick(self) -> None:
        started = time.time()
        saved_at = self.parts.saves.take()
        try:
            self._answer_requests()
            result = self.reconciler.tick()
        except stopping.Stopping:
            logger.info("reconcile cut short: the daemon is stopping")
            return
        except Exception as exc:
            logger.exception("reconcile failed")
            self._beat.last_reconcile_ok = False
            self._beat.last_error = str(exc) or type(exc).__name__
            self._retry_soon()
            return
        self._beat.last_reconcile_at = started
        self._beat.last_reconcile_seconds = time.time() - started
        self._beat.last_reconcile_ok = True
        self._beat.last_error = ""
        if saved_at is not None:
            self._observe_save_to_start(saved_at, result.actions)
        if result.snapshot is not None:
            self._check_degraded()
            self._report(result.snapshot, result.postponed)
            if self.parts.watcher is not None:
                self.parts.watcher.acknowledge(result.snapshot.version)
        if result.again and not result.errors:
            self.kick()
        elif result.again:
            self._retry_soon()

    def _observe_save_to_start(self, saved_at: float, actions: Sequence[object]) -> None:
        """Agents this reconcile started after a save of the list: the save caused them."""
        keys = {a.project.key for a in actions if isinstance(a, Start)}
        if not keys:
            return
        live = set(self.parts.store.active_runs())
        for _ in keys & live:
            self._beat.observe_save_to_start(max(0.0, time.time() - saved_at))

    def _report(self, snapshot: Snapshot, postponed: str) -> None:
        notes = self.parts.store.notes()
        waiting = []
        if postponed:
            count = len(self.parts.store.pending_updates()[0])
            waiting.append(f"{count} update(s) not yet written to the list: {postponed}")
        report = build_report(
            self.parts.source.name,
            snapshot.projects,
            snapshot.findings,
            notes,
            degraded=self._beat.degraded,
            waiting=waiting,
        )
        try:
            write_report(self.config.daemon.state_dir, report)
        except OSError as exc:
            logger.warning("cannot write status report: %s", exc)

    def _retry_soon(self) -> None:
        if self._scheduler.running:
            run_at = datetime.now().astimezone() + timedelta(seconds=RETRY_SECONDS)
            self._scheduler.add_job(
                self.kick, "date", run_date=run_at, id="retry", replace_existing=True
            )

    def _check_degraded(self) -> None:
        """Runtimes or a list service that stopped answering make the daemon degraded."""
        now = time.monotonic()
        if now - self._degraded_checked >= DEGRADED_CHECK_SECONDS:
            self._degraded_checked = now
            self._runtimes_degraded = self.parts.runner.degraded()
        unreachable = self.parts.source.unreachable
        source = [f"priority source unreachable, using the list as last read: {unreachable}"]
        self._beat.degraded = [*self._runtimes_degraded, *(source if unreachable else [])]

    def _write_beat(self) -> None:
        self._check_degraded()
        self._beat.loop_at = time.time()
        threads = self._keeper.check()
        self._beat.threads = threads.beats
        self._beat.dead_threads = threads.dead
        self._beat.thread_restarts = threads.restarts
        if self.parts.watcher is not None:
            self._beat.watcher_mode = self.parts.watcher.mode_in_use or ""
        self._beat.agent_usage = self._usage.latest
        try:
            write_heartbeat(self._heartbeat_file, self._beat)
        except OSError as exc:
            logger.warning("cannot write heartbeat: %s", exc)

    def _shutdown(self) -> None:
        logger.info("stopping: agents are left running and will be adopted on the next start")
        self._keeper.stop()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._flush_outbox()
        self._beat.stopped = True
        self._write_beat()
        self._requests.close()
        self.parts.store.close()

    def _flush_outbox(self) -> None:
        updates, seq = self.parts.store.pending_updates()
        if not updates:
            return
        try:
            self.parts.source.write_back(updates)
        except (Exception, stopping.Stopping) as exc:
            # A write-back that would wait (an editor's lock) waits for no one at a stop.
            logger.warning("outbox kept for the next start: %s", exc)
            return
        self.parts.store.clear_updates([u.project for u in updates], seq)
