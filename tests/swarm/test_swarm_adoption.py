"""SIGKILL of the daemon while swarm jobs run: the next daemon adopts them, never duplicates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sidekick.containers.swarm import SwarmEngine
from sidekick.models import ProjectStatus, slugify
from tests.polling import wait_until
from tests.swarm.helpers import DAEMON_SCRIPT, swarm_daemon, swarm_world, tick_until, unique

P = ProjectStatus

# Each agent takes a lock directory in its project: finding it taken means two jobs of
# one project ran at once.
AGENT = [
    "sh",
    "-c",
    'if ! mkdir .agent-lock 2>/dev/null; then echo "$SIDEKICK_PROJECT" >> duplicates; fi; '
    'echo "$SIDEKICK_RUN_ID" >> started; sleep 2; rmdir .agent-lock',
]


def _running_jobs(engine: SwarmEngine) -> int:
    count = 0
    for service in engine.services():
        tasks = engine.tasks(service.id)
        count += bool(tasks and tasks[0].state == "running")
    return count


def test_sigkill_of_the_daemon_mid_job_and_a_restart_adopt_it_with_no_duplicate(
    base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    names = [unique(f"k{i}") for i in range(2)]
    rows = [f"{n},{i},Pending,,,,,," for i, n in enumerate(names)]
    world = swarm_world(tmp_path, names, AGENT, base_image, instance, rows=rows)
    for _ in range(2):
        daemon = subprocess.Popen(
            [sys.executable, "-c", DAEMON_SCRIPT, str(world.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _running_jobs(swarm_engine) > 0, timeout=60, step=0.1)
        daemon.kill()
        daemon.wait()
        per_project = [len(swarm_engine.services(slugify(n))) for n in names]
        assert max(per_project) <= 1, per_project
    final, store = swarm_daemon(world.config())
    tick_until(
        final, lambda: all(r.status is P.COMPLETE for r in world.rows().values()), timeout=120
    )
    projects = [tmp_path / "projects" / n for n in names]
    assert not [p for p in projects if (p / "duplicates").exists()], "two jobs ran at once"
    started = {run for p in projects for run in (p / "started").read_text().split()}
    recorded = {run.run_id for n in names for run in store.runs(n, limit=100)}
    assert started <= recorded, "a job ran with no run in the state store"
    assert not store.active_runs()
    kinds = [e.kind for n in names for e in store.events(n, limit=200)]
    assert "adopted" in kinds, "no kill landed while a job was running"
    tick_until(final, lambda: swarm_engine.services() == [], timeout=30)


def test_a_finished_job_found_after_a_restart_is_recorded_once_with_its_logs(
    base_image: str, instance: str, swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    name = unique("late")
    command = ["sh", "-c", "echo done while nobody watched; exit 4"]
    world = swarm_world(tmp_path, [name], command, base_image, instance)
    world.save([f"{name},1,Pending,,,,,,"])
    first, _ = swarm_daemon(world.config())
    first.run_once()
    wait_until(
        lambda: all(t.ended for s in swarm_engine.services() for t in swarm_engine.tasks(s.id)),
        timeout=60,
    )
    second, store = swarm_daemon(world.config())
    tick_until(second, lambda: world.rows()[name].status is P.FAILED)
    (run,) = store.runs(name)
    assert run.exit_code == 4
    assert Path(run.log_path).read_text() == "done while nobody watched\n"
