from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from sidekick.models import Project, ProjectStatus
from sidekick.planner import (
    Finish,
    Hold,
    Mark,
    PlanInput,
    RunningAgent,
    Start,
    Stop,
    plan,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
P = ProjectStatus


def project(name: str, priority: int = 1, status: P = P.PENDING, **kw: object) -> Project:
    position = kw.pop("position", priority)
    return Project(name=name, priority=priority, status=status, position=position, **kw)  # type: ignore[arg-type]


def live(p: Project, **kw: object) -> RunningAgent:
    return RunningAgent(p.key, p.name, **kw)  # type: ignore[arg-type]


def started(actions: Sequence[object]) -> list[str]:
    return [a.project.name for a in actions if isinstance(a, Start)]


def test_pending_projects_start_in_priority_then_deadline_then_list_order() -> None:
    projects = [
        project("late", 2, deadline=date(2027, 1, 1), position=0),
        project("first", 1, position=5),
        project("soon", 2, deadline=date(2026, 12, 1), position=1),
        project("undated", 2, position=2),
        project("undated-later", 2, position=3),
    ]
    actions = plan(PlanInput(projects, {}, NOW, max_agents=10))
    assert started(actions) == ["first", "soon", "late", "undated", "undated-later"]


def test_capacity_limits_starts_and_counts_live_agents() -> None:
    a, b, c = project("a", 1), project("b", 2), project("c", 3)
    busy = project("busy", 9, P.IN_PROGRESS, agent="sidekick-busy")
    actions = plan(PlanInput([a, b, c, busy], {busy.key: live(busy)}, NOW, max_agents=2))
    assert started(actions) == ["a"]
    assert Hold("b", "waiting for a free agent slot") in actions


def test_gpu_slots_are_respected_but_cpu_projects_still_start() -> None:
    g1, g2 = project("g1", 1, gpu=True), project("g2", 2, gpu=True)
    cpu = project("cpu", 3)
    actions = plan(PlanInput([g1, g2, cpu], {}, NOW, max_agents=5, gpu_slots=1))
    assert started(actions) == ["g1", "cpu"]
    assert Hold("g2", "waiting for a GPU slot") in actions


def test_blocked_complete_failed_rows_are_left_alone() -> None:
    rows = [project("x", 1, P.BLOCKED), project("y", 1, P.COMPLETE), project("z", 1, P.FAILED)]
    assert plan(PlanInput(rows, {}, NOW)) == []


def test_missing_directory_marks_the_row_blocked() -> None:
    p = project("nodir")
    actions = plan(PlanInput([p], {}, NOW, missing_directories={"nodir": "no directory /x"}))
    assert actions == [Mark("nodir", P.BLOCKED, "no directory /x")]


def test_a_live_agent_is_never_started_twice() -> None:
    p = project("a")
    assert started(plan(PlanInput([p], {p.key: live(p)}, NOW))) == []


def test_finished_agent_is_finished_and_its_slot_reused() -> None:
    done, nxt = project("done", 1, P.IN_PROGRESS, agent="sidekick-done"), project("next", 2)
    actions = plan(PlanInput([done, nxt], {done.key: live(done, exit_code=0)}, NOW, max_agents=1))
    assert actions[0] == Finish(done.key, "done", 0)
    assert started(actions) == ["next"]


def test_person_blocking_or_deleting_a_running_project_stops_it() -> None:
    blocked = project("blocked", 1, P.BLOCKED)
    gone = project("gone", 2, P.IN_PROGRESS)
    agents = {blocked.key: live(blocked), gone.key: live(gone)}
    actions = plan(PlanInput([blocked], agents, NOW))
    assert Stop(blocked.key, "blocked", "row marked Blocked") in actions
    assert Stop(gone.key, "gone", "row removed from the list") in actions


def test_let_finish_policy_keeps_running_agents_and_their_slots() -> None:
    blocked, waiting = project("blocked", 1, P.BLOCKED), project("waiting", 2)
    given = PlanInput(
        [blocked, waiting], {blocked.key: live(blocked)}, NOW, max_agents=1, on_removed="finish"
    )
    assert plan(given) == [Hold("waiting", "waiting for a free agent slot")]


def test_max_runtime_stops_and_fails_the_agent() -> None:
    p = project("slow", 1, P.IN_PROGRESS, agent="sidekick-slow")
    agent = live(p, started_at=NOW - timedelta(seconds=601))
    (action,) = plan(PlanInput([p], {p.key: agent}, NOW, max_runtime=600))
    assert isinstance(action, Stop) and action.outcome is P.FAILED


def test_raising_priority_does_not_preempt_unless_configured() -> None:
    running = project("running", 5, P.IN_PROGRESS, agent="sidekick-running")
    urgent = project("urgent", 1)
    agents = {running.key: live(running)}
    assert plan(PlanInput([running, urgent], agents, NOW, max_agents=1)) == [
        Hold("urgent", "waiting for a free agent slot")
    ]
    actions = plan(PlanInput([running, urgent], agents, NOW, max_agents=1, preempt=True))
    assert Stop(running.key, "running", "preempted by urgent (priority 1)", P.PENDING) in actions


def test_our_interrupted_run_is_requeued_but_a_persons_in_progress_is_not() -> None:
    ours = project("ours", 1, P.IN_PROGRESS, agent="sidekick-ours")
    theirs = project("theirs", 1, P.IN_PROGRESS, agent="ann")
    actions = plan(PlanInput([ours, theirs], {}, NOW))
    assert actions == [Start(ours, interrupted=True)]


def test_held_projects_say_why() -> None:
    p = project("spent")
    actions = plan(PlanInput([p], {}, NOW, held={"spent": "budget spent ($5.00 of $5.00)"}))
    assert actions == [Hold("spent", "budget spent ($5.00 of $5.00)")]


def test_two_names_that_shared_a_slug_neither_start_nor_stop_each_other() -> None:
    back = project("Бэкенд", 1, P.IN_PROGRESS, agent="sidekick-bekend_622612a5")
    front = project("Фронтенд", 2, P.BLOCKED)
    cpp, c = project("C++ SDK", 3), project("C SDK", 4)
    foo, foo_dash = project("Foo Bar", 5), project("foo-bar", 6)
    rows = [back, front, cpp, c, foo, foo_dash]
    actions = plan(PlanInput(rows, {back.key: live(back)}, NOW, max_agents=10))
    assert not [a for a in actions if isinstance(a, Stop)]
    assert started(actions) == ["C++ SDK", "C SDK", "Foo Bar", "foo-bar"]
    assert len({a.project.key for a in actions if isinstance(a, Start)}) == 4


def test_a_row_still_in_the_list_but_unreadable_keeps_its_agent() -> None:
    kept = project("dated", 1, P.IN_PROGRESS, agent="sidekick-dated")
    twin = project("twin", 2, P.IN_PROGRESS, agent="sidekick-twin")
    agents = {kept.key: live(kept), twin.key: live(twin)}
    # The save retyped dated's Deadline as 15/12/2026 and copied twin's row: neither is served.
    actions = plan(PlanInput([], agents, NOW, unserved=frozenset({kept.key, twin.key})))
    assert actions == []


def test_only_a_row_that_is_gone_blocked_or_complete_stops_its_agent() -> None:
    gone, blocked = project("gone"), project("blocked", 2, P.BLOCKED)
    done = project("done", 3, P.COMPLETE)
    bad = project("bad", 4, P.IN_PROGRESS)
    agents = {p.key: live(p) for p in (gone, blocked, done, bad)}
    actions = plan(PlanInput([blocked, done], agents, NOW, unserved=frozenset({bad.key})))
    assert sorted((a.project, a.reason) for a in actions if isinstance(a, Stop)) == [
        ("blocked", "row marked Blocked"),
        ("done", "row marked Complete"),
        ("gone", "row removed from the list"),
    ]


def test_an_agent_started_under_its_old_key_counts_as_the_projects_agent() -> None:
    foo = project("Foo Bar", 1, P.IN_PROGRESS, agent="sidekick-foo-bar")
    old = RunningAgent("sidekick-foo-bar", "Foo Bar", project_key=foo.key)
    actions = plan(PlanInput([foo], {old.key: old}, NOW))
    assert actions == []
    finished = RunningAgent("sidekick-foo-bar", "Foo Bar", exit_code=0, project_key=foo.key)
    assert plan(PlanInput([foo], {old.key: finished}, NOW)) == [
        Finish("sidekick-foo-bar", "Foo Bar", 0)
    ]


def test_a_project_whose_key_an_old_agent_holds_waits_for_it() -> None:
    foo = project("Foo Bar", 1, P.IN_PROGRESS, agent="sidekick-foo-bar")
    dash = project("foo-bar", 2)
    old = RunningAgent("sidekick-foo-bar", "Foo Bar", project_key=foo.key)
    actions = plan(PlanInput([foo, dash], {old.key: old}, NOW, max_agents=5))
    assert actions == [
        Hold("foo-bar", "waiting for sidekick-foo-bar, still running for Foo Bar, to end")
    ]
