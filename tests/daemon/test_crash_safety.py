"""SIGKILL the daemon at random moments while agents start and finish: no duplicate agent,
no lost run, no run left open."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.health import heartbeat_path, read_heartbeat
from sidekick.models import ProjectStatus
from sidekick.state import ACTIVE_STATES, StateStore
from tests.daemon.world import World, make_world
from tests.polling import wait_until

KILLS = 100
# Each agent takes a lock directory in its project; finding it taken means two
# agents of one project were alive at once, whatever their session names were.
AGENT_MARK = ".agent-lock"
AGENT = [
    "sh",
    "-c",
    f'if ! mkdir {AGENT_MARK} 2>/dev/null; then echo "${{PWD##*/}}" >> ../duplicates; fi;'
    f' echo "$SIDEKICK_RUN_ID" >> ../started; sleep 0.3; rmdir {AGENT_MARK}',
]
PROJECTS = [f"p{i:02d}" for i in range(12)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rows = [f"{name},{i},Pending,,,,,," for i, name in enumerate(PROJECTS)]
    made = make_world(
        tmp_path, PROJECTS, AGENT, rows=rows, capacity={"max_agents": 4, "gpu_slots": 0}
    )
    yield made
    made.kill_tmux()


def start_daemon(world: World) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sidekick", "run", "--config", str(world.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class AgentCensus:
    """Counts, every few milliseconds from /proc, the live agents of each project."""

    def __init__(self, projects_dir: Path) -> None:
        self.projects_dir = projects_dir
        self.most: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-census", daemon=True)

    def __enter__(self) -> AgentCensus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for project, count in self.count().items():
                self.most[project] = max(self.most[project], count)
            self.samples += 1

    def count(self) -> Counter[str]:
        """Agents by project; a shell forked by an agent (before it execs) is not another."""
        agents = dict(filter(None, map(self._agent, filter(str.isdigit, os.listdir("/proc")))))
        return Counter(project for _, (parent, project) in agents.items() if parent not in agents)

    def _agent(self, pid: str) -> tuple[str, tuple[str, str]] | None:
        """(pid, (parent pid, project)) when ``pid`` is an agent's shell."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if not cmdline.startswith(b"sh\0-c\0") or AGENT_MARK.encode() not in cmdline:
            return None
        if cwd.parent != self.projects_dir:
            return None
        return pid, (stat.rsplit(")", 1)[1].split()[1], cwd.name)


def kill_at_a_random_moment(world: World, rng: random.Random) -> None:
    """Start the daemon and SIGKILL it: while it starts up, or once it reconciles."""
    daemon = start_daemon(world)
    if rng.random() < 0.3:
        time.sleep(rng.uniform(0.0, 0.8))
    else:
        beat = heartbeat_path(world.state)
        wait_until(lambda: _beat_of(beat, daemon.pid), timeout=30, step=0.01)
        time.sleep(rng.uniform(0.0, 0.4))
    daemon.kill()
    daemon.wait()


def _beat_of(path: Path, pid: int) -> bool:
    beat = read_heartbeat(path)
    return beat is not None and beat.pid == pid


def ask_again(world: World) -> None:
    """The person sets finished rows back to Pending, so agents keep starting."""
    text = world.csv.read_text()
    again = text.replace(f",{ProjectStatus.COMPLETE.value},", f",{ProjectStatus.PENDING.value},")
    if again != text:
        tmp = world.root / ".priorities.csv.swp~"
        tmp.write_text(again)
        tmp.replace(world.csv)


def all_complete(world: World) -> bool:
    return all(r.status is ProjectStatus.COMPLETE for r in world.rows().values())


def test_a_hundred_sigkills_never_duplicate_an_agent_nor_leave_a_run_open(world: World) -> None:
    rng = random.Random(20261130)
    projects_dir = world.root / "projects"
    with AgentCensus(projects_dir) as census:
        for kill in range(KILLS):
            kill_at_a_random_moment(world, rng)
            if kill % 10 == 9:
                ask_again(world)
        final = start_daemon(world)
        try:
            wait_until(lambda: all_complete(world), timeout=60, what="every row Complete")
            wait_until(lambda: not census.count(), timeout=30, what="every agent ended")
        finally:
            final.terminate()
            final.wait(10)

    assert census.samples > 100 and max(census.most.values()) == 1, census.most
    assert not (projects_dir / "duplicates").exists(), "two agents ran for a project"
    started = (projects_dir / "started").read_text().split()
    store = StateStore(world.state / "sidekick.db")
    try:
        recorded = {run.run_id: run for name in PROJECTS for run in store.runs(name, limit=1000)}
        adopted = [e for e in store.events(limit=10_000) if e.kind == "adopted"]
    finally:
        store.close()
    assert set(started) <= set(recorded), "an agent ran with no run in the state store"
    assert len(started) > len(PROJECTS), "agents did not keep starting between the kills"
    assert not [r for r in recorded.values() if r.state in ACTIVE_STATES], "a run left open"
    assert adopted, "no kill landed while an agent ran, so nothing was proven"
