"""SIGKILL the daemon at random moments during many launches: no duplicate agent, no lost run."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.models import ProjectStatus
from sidekick.state import StateStore
from tests.daemon.world import World, make_world
from tests.polling import wait_until

# Each agent takes a lock directory in its project; finding it taken means two
# agents of one project were alive at once, whatever their session names were.
AGENT = [
    "sh",
    "-c",
    "if ! mkdir .agent-lock 2>/dev/null; then echo {project} >> ../duplicates; fi; "
    'echo "$SIDEKICK_RUN_ID" >> ../started; sleep 0.4; rmdir .agent-lock',
]
PROJECTS = [f"p{i:02d}" for i in range(16)]


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


def test_sigkill_at_random_points_never_duplicates_and_never_loses_a_run(world: World) -> None:
    rng = random.Random(20261123)
    kills = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        daemon = start_daemon(world)
        time.sleep(rng.uniform(0.05, 0.9))
        daemon.kill()
        daemon.wait()
        kills += 1
        if kills >= 12 and all(r.status is ProjectStatus.COMPLETE for r in world.rows().values()):
            break
    final = start_daemon(world)
    try:
        wait_until(
            lambda: all(r.status is ProjectStatus.COMPLETE for r in world.rows().values()),
            timeout=60,
        )
    finally:
        final.terminate()
        final.wait(10)

    assert kills >= 12
    assert not (world.root / "projects" / "duplicates").exists(), "two agents ran for a project"
    started = (world.root / "projects" / "started").read_text().split()
    store = StateStore(world.state / "sidekick.db")
    recorded = {run.run_id: run for name in PROJECTS for run in store.runs(name, limit=100)}
    assert set(started) <= set(recorded), "an agent ran with no run in the state store"
    assert not [r for r in recorded.values() if r.state in ("starting", "running")]
    for name in PROJECTS:
        finished = [r for r in store.runs(name, limit=100) if r.state == "finished"]
        assert len(finished) >= 1, name
    adopted = [e for e in store.events(limit=1000) if e.kind == "adopted"]
    assert adopted, "no kill landed while an agent ran, so nothing was proven"
