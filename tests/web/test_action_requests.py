"""Actions asked for on the dashboard, carried out and answered by the daemon."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sidekick.daemon import Daemon
from sidekick.models import ProjectStatus
from sidekick.state import StateStore
from sidekick.web.action_requests import REQUEUE, RESTART, STOP, ActionRequests
from tests.daemon.world import World, make_world
from tests.polling import wait_until

SLOW = ["sh", "-c", "echo working; while :; do sleep 0.1; done"]
FAILING = ["sh", "-c", "echo broken; exit 3"]


def _world(worlds: list[World], tmp_path: Path, command: list[str], rows: list[str]) -> World:
    names = [r.split(",")[0] for r in rows]
    world = make_world(tmp_path, names, command, rows=rows)
    worlds.append(world)
    return world


def _tick_until(daemon: Daemon, condition: object) -> None:
    def ticked() -> object:
        daemon.run_once()
        return condition()  # type: ignore[operator]

    wait_until(ticked, timeout=15, step=0.05)


def _audit(world: World, project: str) -> list[tuple[str, str, object]]:
    store = StateStore(world.state / "sidekick.db")
    try:
        return [(e.kind, e.message, e.data.get("user")) for e in store.events(project)]
    finally:
        store.close()


def test_a_stop_request_stops_the_agent_blocks_the_row_and_is_answered(
    worlds: list[World], tmp_path: Path
) -> None:
    world = _world(worlds, tmp_path, SLOW, ["alpha,1,Pending,,,Go,,,"])
    daemon = Daemon(world.config())
    _tick_until(daemon, lambda: world.rows()["alpha"].status is ProjectStatus.IN_PROGRESS)
    requests = ActionRequests(world.state / "sidekick.db")
    asked = requests.submit("alice", STOP, "alpha")
    _tick_until(daemon, lambda: world.rows()["alpha"].status is ProjectStatus.BLOCKED)
    (answered,) = requests.recent()
    assert (answered.id, answered.state, answered.answer) == (
        asked,
        "done",
        "stopped sidekick-alpha",
    )
    assert world.sessions() == []
    assert (
        "dashboard-stop",
        "stopped sidekick-alpha (asked by alice on the dashboard)",
        "alice",
    ) in (_audit(world, "alpha"))
    assert "stopped by alice from the dashboard" in world.rows()["alpha"].last_update


def test_a_requeue_request_sets_a_failed_row_pending_and_the_daemon_starts_it(
    worlds: list[World], tmp_path: Path
) -> None:
    world = _world(worlds, tmp_path, FAILING, ["alpha,1,Pending,,,Go,,,"])
    daemon = Daemon(world.config())
    _tick_until(daemon, lambda: world.rows()["alpha"].status is ProjectStatus.FAILED)
    runs_before = len(StateStore(world.state / "sidekick.db").runs("alpha"))
    requests = ActionRequests(world.state / "sidekick.db")
    requests.submit("bob", REQUEUE, "alpha")
    _tick_until(daemon, lambda: len(StateStore(world.state / "sidekick.db").runs("alpha")) > 1)
    assert runs_before == 1
    assert [(r.state, r.answer) for r in requests.recent()] == [("done", "alpha set to Pending")]
    assert ("dashboard-requeue", "alpha set to Pending (asked by bob on the dashboard)", "bob") in (
        _audit(world, "alpha")
    )


def test_requests_that_no_longer_fit_are_refused_with_the_reason(
    worlds: list[World], tmp_path: Path
) -> None:
    world = _world(worlds, tmp_path, SLOW, ["alpha,1,Complete,,,Done,,,", "beta,2,Pending,,,Go,,,"])
    daemon = Daemon(world.config())
    _tick_until(daemon, lambda: world.rows()["beta"].status is ProjectStatus.IN_PROGRESS)
    requests = ActionRequests(world.state / "sidekick.db")
    requests.submit("alice", STOP, "alpha")
    requests.submit("alice", REQUEUE, "alpha")
    requests.submit("alice", REQUEUE, "beta")
    requests.submit("alice", REQUEUE, "nobody")
    daemon.run_once()
    answers = [(r.project, r.action, r.state, r.answer) for r in reversed(requests.recent())]
    assert answers == [
        ("alpha", STOP, "refused", "alpha has no running agent"),
        ("alpha", REQUEUE, "refused", "alpha is not Failed (Complete)"),
        ("beta", REQUEUE, "refused", "beta is not Failed (In Progress)"),
        ("nobody", REQUEUE, "refused", "nobody is not Failed (not in the list)"),
    ]
    assert world.rows()["alpha"].status is ProjectStatus.COMPLETE
    assert world.sessions() == ["sidekick-beta"]


def test_the_running_daemon_answers_a_request_within_a_second(
    worlds: list[World], tmp_path: Path
) -> None:
    world = _world(worlds, tmp_path, SLOW, ["alpha,1,Pending,,,Go,,,"])
    daemon = Daemon(world.config())
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: world.sessions() == ["sidekick-alpha"], what="the agent starts")
        requests = ActionRequests(world.state / "sidekick.db")
        asked = time.monotonic()
        requests.submit("alice", STOP, "alpha")
        wait_until(lambda: requests.recent()[0].state == "done", what="the answer", timeout=5)
        assert time.monotonic() - asked < 1.0 + world.config().policy.stop_grace
    finally:
        daemon.request_stop()
        thread.join(timeout=30)


def test_a_request_left_under_way_by_a_stopped_daemon_is_answered_at_the_next_start(
    worlds: list[World], tmp_path: Path
) -> None:
    world = _world(worlds, tmp_path, SLOW, ["alpha,1,Complete,,,Done,,,"])
    world.state.mkdir(parents=True, exist_ok=True)
    requests = ActionRequests(world.state / "sidekick.db")
    requests.start(requests.submit("alice", RESTART, "alpha"), "under way")
    Daemon(world.config())
    assert [(r.state, r.answer) for r in requests.recent()] == [
        ("failed", "the daemon stopped while it was under way")
    ]
