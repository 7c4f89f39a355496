"""What each live agent uses (CPU %, resident memory), sampled by the daemon for the dashboard.

The dashboard has no Docker socket and, under Compose, another PID namespace,
so the daemon samples every few seconds on its scheduler (never on the
reconcile's path) and the heartbeat carries the last sample. A tmux agent is
its wrapper and the agent's process group (their pids are written beside the
run's log), with every descendant, read from ``/proc``; a container agent is
the engine's one-shot stats. CPU % is of one CPU (200 % is two cores busy), as
``docker stats`` counts it: over the time since the previous sample of the
same agent, and on the first sample the average since its processes started.
An agent with nothing left to measure is simply absent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidekick.containers.errors import ContainerError
from sidekick.containers.observe import stats_of_many
from sidekick.insight.load import Load, read_load
from sidekick.runners import agent_lock
from sidekick.runners.base import Runner, read_exit_status
from sidekick.runners.tmux import TmuxRunner

if TYPE_CHECKING:
    from sidekick.runners.container import ContainerRunner

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 3.0
PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")

Usage = dict[str, float]
"""``{"cpu_percent": ..., "rss_bytes": ..., "at": unix time}``, as the heartbeat keeps it."""


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    group: int
    ticks: int
    started: int
    rss_pages: int


def parse_stat(text: str) -> ProcStat | None:
    """One ``/proc/<pid>/stat`` line; the command name may hold spaces and parentheses."""
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    try:
        pid = int(head.split("(", 1)[0])
        # After the name: state ppid pgrp ... utime(14) stime(15) ... starttime(22) vsize rss(24).
        return ProcStat(
            pid,
            int(fields[1]),
            int(fields[2]),
            int(fields[11]) + int(fields[12]),
            int(fields[19]),
            int(fields[21]),
        )
    except (ValueError, IndexError):
        return None


def read_processes(proc: Path = PROC) -> dict[int, ProcStat]:
    found: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue  # ended while we looked
        if stat is not None:
            found[stat.pid] = stat
    return found


def process_tree(processes: Mapping[int, ProcStat], ids: agent_lock.ProcessIds) -> list[ProcStat]:
    """The wrapper, the agent's group and every descendant of either."""
    chosen = {
        p.pid for p in processes.values() if p.pid == ids.wrapper or p.group == ids.agent_group
    }
    children: dict[int, list[int]] = {}
    for p in processes.values():
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(chosen)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in chosen:
                chosen.add(child)
                todo.append(child)
    return [processes[pid] for pid in sorted(chosen)]


def _uptime(proc: Path) -> float:
    return float((proc / "uptime").read_text(encoding="ascii").split()[0])


class UsageSampler:
    """Keeps the last sample of every live agent; :meth:`sample` runs on the scheduler."""

    def __init__(
        self,
        runner: Runner,
        *,
        proc: Path = PROC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.proc = proc
        self.clock = clock
        self.latest: dict[str, Usage] = {}
        self._ticks: dict[str, tuple[float, dict[int, int]]] = {}
        self._loads: dict[str, Load] = {}

    def sample(self) -> dict[str, Usage]:
        usage: dict[str, Usage] = {}
        for tmux in self._runners(TmuxRunner):
            try:
                usage.update(self._tmux(tmux))
            except OSError as exc:
                logger.debug("cannot sample tmux agents: %s", exc)
        for runner in self._container_runners():
            usage.update(self._containers(runner))
        self._ticks = {k: v for k, v in self._ticks.items() if k in usage}
        self._loads = {k: v for k, v in self._loads.items() if k in usage}
        self.latest = usage
        return usage

    def _runners(self, kind: type[TmuxRunner]) -> list[TmuxRunner]:
        found = [self.runner, getattr(self.runner, "tmux", None)]
        return [r for r in found if isinstance(r, kind)]

    def _container_runners(self) -> list[ContainerRunner]:
        if type(self.runner).__name__ == "ContainerRunner":
            return [self.runner]  # type: ignore[list-item]
        containers: Mapping[str, ContainerRunner] = getattr(self.runner, "containers", {})
        # Profiles may share an engine: ask each engine once.
        unique = {id(r.engine): r for r in containers.values()}
        return list(unique.values())

    # --- tmux: /proc ---------------------------------------------------------------------

    def _tmux(self, runner: TmuxRunner) -> dict[str, Usage]:
        running = dict(_running_tmux_agents(runner.lock_dir))
        if not running:
            return {}
        processes = read_processes(self.proc)
        now, uptime = self.clock(), _uptime(self.proc)
        usage = {}
        for key, ids in running.items():
            tree = process_tree(processes, ids)
            if tree:
                usage[key] = self._tmux_usage(key, tree, now, uptime)
        return usage

    def _tmux_usage(self, key: str, tree: list[ProcStat], now: float, uptime: float) -> Usage:
        ticks = {p.pid: p.ticks for p in tree}
        previous = self._ticks.get(key)
        if previous is not None and now > previous[0]:
            at, before = previous
            # A process new since the last sample used all its ticks in between.
            used = sum(
                t - before.get(pid, 0) for pid, t in ticks.items() if t >= before.get(pid, 0)
            )
            elapsed = now - at
        else:
            used = sum(ticks.values())
            elapsed = uptime - min(p.started for p in tree) / _TICKS
        self._ticks[key] = (now, ticks)
        percent = 100.0 * used / _TICKS / elapsed if elapsed > 0 else 0.0
        rss = sum(p.rss_pages for p in tree) * _PAGE
        return {"cpu_percent": round(percent, 1), "rss_bytes": float(rss), "at": now}

    # --- containers: the engine's one-shot stats -----------------------------------------

    def _containers(self, runner: ContainerRunner) -> dict[str, Usage]:
        try:
            agents = runner.list_agents()
        except Exception as exc:
            logger.debug("cannot list container agents: %s", exc)
            return {}
        live = {key: a for key, a in agents.items() if not a.finished}
        usage = {}
        for key, stats in stats_of_many(runner.engine, sorted(live)).items():
            if isinstance(stats, ContainerError) or not stats.get("read"):
                continue
            started = live[key].started_at
            load = read_load(stats, started, None, self._loads.get(key))
            if not load.memory_used and load.pids == 0:
                continue  # stats of a container no longer running
            self._loads[key] = load
            usage[key] = {
                "cpu_percent": round(load.cpu_percent or 0.0, 1),
                "rss_bytes": float(load.memory_used),
                "at": self.clock(),
            }
        return usage


def _running_tmux_agents(lock_dir: Path) -> Iterable[tuple[str, agent_lock.ProcessIds]]:
    """Keys whose run has no exit status yet and whose wrapper wrote its pids."""
    if not lock_dir.is_dir():
        return
    for path in sorted(lock_dir.glob(f"*{agent_lock.LOCK_SUFFIX}")):
        record = agent_lock.read_record(path)
        if record is None or read_exit_status(record.log_path) is not None:
            continue
        ids = agent_lock.read_pids(record.log_path)
        if ids is not None:
            yield path.name.removesuffix(agent_lock.LOCK_SUFFIX), ids


def describe(usage: Mapping[str, Any] | None) -> tuple[str, str]:
    """(CPU, memory) as a person reads them; "-" for an agent with nothing measured."""
    if not usage:
        return "-", "-"
    cpu, rss = usage.get("cpu_percent"), usage.get("rss_bytes")
    cpu_text = "-" if cpu is None else f"{float(cpu):.1f} %"
    return cpu_text, "-" if rss is None else _bytes(float(rss))


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
