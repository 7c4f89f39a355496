"""Resource use of live agents and the save-to-start latency, as the daemon records them."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from sidekick.agent_usage import describe, parse_stat, process_tree
from sidekick.health import Heartbeat
from sidekick.runners.agent_lock import ProcessIds
from sidekick.web.metrics import save_to_start
from tests.daemon.world import World
from tests.polling import wait_until
from tests.web.dashboard import TOKEN, Dashboard, running_dashboard

ROWS = ["alpha,1,Pending,,,Ship it,,,", "beta,2,Complete,,,Done,,,"]


def _get(dashboard: Dashboard, path: str) -> str:
    request = urllib.request.Request(
        dashboard.url + path, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def _agent_row(dashboard: Dashboard, key: str) -> str:
    page = _get(dashboard, "/agents")
    rows = [row for row in page.split("<tr>") if f">{key}</th>" in row]
    return rows[0] if rows else ""


def _measured(row: str) -> tuple[str, str] | None:
    cpu = re.search(r'class="cpu">(\d+\.\d %)<', row)
    memory = re.search(r'class="memory">(\d+\.\d (?:KiB|MiB|GiB))<', row)
    return (cpu.group(1), memory.group(1)) if cpu and memory else None


def _metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_the_agents_page_shows_each_live_tmux_agents_cpu_and_memory(
    worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        measured = wait_until(
            lambda: _measured(_agent_row(dashboard, "sidekick-alpha")),
            timeout=30,
            what="the agent's resource use on the Agents page",
        )
        assert measured is not None
        cpu, memory = measured
        assert float(cpu.split()[0]) >= 0.0
        assert not memory.startswith("0.0")


def test_a_save_that_starts_an_agent_is_timed_in_the_metrics(
    worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        wait_until(lambda: _agent_row(dashboard, "sidekick-alpha"), what="alpha's agent")
        before = _metric(_get(dashboard, "/metrics"), "sidekick_save_to_start_seconds_count")
        assert before == 0.0
        dashboard.world.save([ROWS[0], "beta,2,Pending,,,Again,,,"])
        wait_until(
            lambda: _metric(_get(dashboard, "/metrics"), "sidekick_save_to_start_seconds_count"),
            timeout=30,
            what="a save-to-start observation",
        )
        text = _get(dashboard, "/metrics")
        assert _metric(text, "sidekick_save_to_start_seconds_count") == 1.0
        seconds = _metric(text, "sidekick_save_to_start_seconds_sum")
        assert seconds is not None and 0.0 <= seconds < 10.0
        assert 'sidekick_save_to_start_seconds_bucket{le="+Inf"} 1.0' in text


def test_a_process_tree_is_the_wrapper_the_agents_group_and_their_descendants() -> None:
    def stat(pid: int, ppid: int, group: int) -> str:
        # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        # utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss
        return f"{pid} (a (b) c) S {ppid} {group} 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 100 0 7"

    table = {
        p.pid: p
        for p in (
            parse_stat(stat(10, 1, 10)),  # the wrapper
            parse_stat(stat(11, 10, 11)),  # the agent, its own group
            parse_stat(stat(12, 11, 12)),  # a child that left the group
            parse_stat(stat(20, 1, 20)),  # someone else
        )
        if p is not None
    }
    tree = process_tree(table, ProcessIds(wrapper=10, agent_group=11))
    assert [p.pid for p in tree] == [10, 11, 12]
    assert tree[0].ticks == 7 and tree[0].rss_pages == 7 and tree[0].started == 100


def test_what_is_not_measured_shows_as_a_dash_and_buckets_are_cumulative() -> None:
    assert describe(None) == ("-", "-")
    assert describe({"cpu_percent": 12.345, "rss_bytes": 3 * 1024 * 1024}) == (
        "12.3 %",
        "3.0 MiB",
    )
    beat = Heartbeat(pid=1, loop_at=0.0)
    for seconds in (0.1, 0.7, 400.0):
        beat.observe_save_to_start(seconds)
    family = save_to_start(beat)
    samples = {(s.name, s.labels.get("le", "")): s.value for s in family.samples}
    assert samples["sidekick_save_to_start_seconds_bucket", "0.25"] == 1
    assert samples["sidekick_save_to_start_seconds_bucket", "1.0"] == 2
    assert samples["sidekick_save_to_start_seconds_bucket", "+Inf"] == 3
    assert samples["sidekick_save_to_start_seconds_count", ""] == 3
    assert abs(samples["sidekick_save_to_start_seconds_sum", ""] - 400.8) < 1e-9
