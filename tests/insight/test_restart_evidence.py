"""A restart loop's count agrees with RestartCount, and says why when the events hold fewer.

The engine keeps only its latest 256 events, of every container together, so on a
busy engine a looping container's first deaths are gone from ``docker events``
while ``RestartCount`` still counts them. The new-user trial (issue 12): a
container with RestartCount 7, all within 25 s, was reported as "4 restarts in the
last 10 min" with no word on the three the engine had dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from docker.api.client import APIClient

from sidekick.containers import observe
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.observe import EngineEvent
from sidekick.insight.health import Health, events_gap, read_health
from sidekick.insight.problems import Facts, Problem, ProblemKind, find_problems
from sidekick.insight.report import InsightCollector
from tests.insight.conftest import remove, start
from tests.polling import wait_until

NOW = datetime(2026, 11, 30, 10, 30, 0, tzinfo=UTC)
EVENTS_SINCE = NOW - timedelta(hours=1)


def looping(restarts: int, created: datetime, deaths: list[datetime]) -> Health:
    return Health(
        state="restarting",
        health=None,
        failing_streak=0,
        probes=(),
        restart_count=restarts,
        oom_killed=False,
        exit_code=3,
        started_at=deaths[-1] if deaths else created,
        finished_at=deaths[-1] if deaths else None,
        restart_policy="always",
        events=tuple(EngineEvent("die", "", "shop-worker", t, 3) for t in deaths),
        created_at=created,
    )


def restart_loop(health: Health, events_since: datetime | None = EVENTS_SINCE) -> Problem:
    facts = Facts(health=health, load=None, events_since=events_since)
    return next(p for p in find_problems(facts, NOW) if p.kind is ProblemKind.RESTART_LOOP)


def test_seven_restarts_in_25_s_with_four_in_the_events_are_seven_and_say_why() -> None:
    created = NOW - timedelta(seconds=25)
    deaths = [NOW - timedelta(seconds=s) for s in (13, 7, 4, 1)]
    problem = restart_loop(looping(7, created, deaths))
    assert problem.summary == (
        "7 restarts in the last 10 min, 4 of them in the engine's events (state restarting)"
    )
    assert problem.evidence[:3] == (
        "restart count 7 (policy always)",
        "created at 10:29:35 (25 s ago): all 7 restarts are within the last 10 min",
        "the engine's events show 4 of its 7 deaths: the engine keeps only its latest 256"
        " events, of every container, so the older 3 were dropped; counted from inspect",
    )
    assert problem.evidence[3:] == (
        "died at 10:29:53 with exit code 3",
        "died at 10:29:56 with exit code 3",
        "died at 10:29:59 with exit code 3",
    )


def test_events_that_hold_every_death_need_no_explanation() -> None:
    created = NOW - timedelta(seconds=25)
    deaths = [NOW - timedelta(seconds=s) for s in (24, 23, 21, 18, 13, 7, 4)]
    problem = restart_loop(looping(7, created, deaths))
    assert problem.summary == "7 restarts in the last 10 min (state restarting)"
    assert not any("engine's events show" in line for line in problem.evidence)


def test_a_container_older_than_the_events_read_counts_only_the_deaths_seen() -> None:
    # Its other restarts may be from yesterday: RestartCount cannot place them in the window.
    created = NOW - timedelta(days=1)
    deaths = [NOW - timedelta(seconds=s) for s in (40, 20, 5)]
    problem = restart_loop(looping(9, created, deaths))
    assert problem.summary == "3 restarts in the last 10 min (state restarting)"
    assert (
        "the engine's events show 3 of its 9 deaths: the others are older than the events"
        " read (since 09:30:00) or were dropped (the engine keeps only its latest 256 events,"
        " of every container); counted from inspect"
    ) in problem.evidence


def test_a_young_container_whose_deaths_all_scrolled_out_is_still_a_loop() -> None:
    problem = restart_loop(looping(5, NOW - timedelta(minutes=2), []))
    assert problem.summary == (
        "5 restarts in the last 10 min, 0 of them in the engine's events (state restarting)"
    )
    assert "so the older 5 were dropped" in problem.evidence[2]


def test_unreadable_events_leave_the_count_to_inspect_and_say_so() -> None:
    health = looping(4, NOW - timedelta(minutes=1), [])
    assert events_gap(health, None) == (
        "the engine's events could not be read: 4 restarts counted from inspect"
    )
    assert "could not be read" in restart_loop(health, None).evidence[2]


@pytest.fixture
def seven_restarts(api: APIClient) -> Iterator[str]:
    # The engine's back-off doubles from 100 ms: seven restarts take about 15 s.
    name = start(
        "loop7",
        ["sh", "-c", "echo 'redis: connection refused' >&2; exit 3"],
        restart_policy={"Name": "always"},
    )
    wait_until(lambda: api.inspect_container(name)["RestartCount"] >= 7, 90, what="7 restarts")
    yield name
    remove(api, name)


@pytest.mark.docker
def test_a_real_loop_counts_what_inspect_counts_when_the_engine_dropped_deaths(
    engine: ContainerEngine, seven_restarts: str
) -> None:
    [report] = InsightCollector(engine).collect([seven_restarts])
    assert report.health is not None
    counted = report.health.restart_count
    [problem] = [p for p in report.problems if p.kind is ProblemKind.RESTART_LOOP]
    # The events read a moment after inspect may hold one death more, never fewer.
    assert problem.summary.split()[0] in {str(counted), str(counted + 1)}
    # The same container as a busy engine shows it: only its last 4 deaths still kept.
    now = datetime.now(UTC)
    raw = observe.inspect_raw(engine, seven_restarts)
    events = observe.recent_events(engine, [seven_restarts], now - timedelta(hours=1), now)
    kept = [e for e in events if e.action == "die"][-4:]
    health = read_health(raw, kept)
    facts = Facts(health=health, load=None, events_since=now - timedelta(hours=1))
    [loop] = [p for p in find_problems(facts, now) if p.kind is ProblemKind.RESTART_LOOP]
    rc, seen = raw["RestartCount"], len(kept)
    assert loop.summary.startswith(f"{rc} restarts in the last 10 min, {seen} of them in the")
    assert f"the engine's events show {seen} of its {rc} deaths" in "\n".join(loop.evidence)
    assert f"so the older {rc - seen} were dropped" in "\n".join(loop.evidence)
