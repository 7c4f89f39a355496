"""The agents, costs, health and project pages, from what the daemon recorded."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, expect

from sidekick.insight.kept import investigations_dir
from sidekick.models import AgentRun, slugify
from sidekick.production.store import LIVE, AuditEntry, ProductionStore
from sidekick.state import RunEnd, StateStore
from tests.daemon.world import World
from tests.web.conftest import log_in, screenshot
from tests.web.dashboard import running_dashboard

ROWS = ["alpha,1,Pending,,,Ship it,,,", "beta,2,Complete,,,Done,,,"]
BUDGET = {"total_usd": 20.0, "per_project_usd": 8.0}


def _past_run(store: StateStore, project: str, day: int, cost: float) -> None:
    started = datetime(2026, 11, day, 9, 0, tzinfo=UTC)
    run = AgentRun(f"{project}-{day}", project, f"sidekick-{project}", ("claude",), started)
    store.begin_run(run)
    end = RunEnd(
        "finished",
        started.replace(hour=10),
        0,
        "complete",
        "Complete",
        "sess-1",
        7,
        1200,
        340,
        cost,
    )
    store.end_run(run.run_id, end)


def _production_and_investigation(world: World, project: str) -> None:
    """What the production and insight commands record, written through their own code."""
    with ProductionStore(world.state / "sidekick.db") as store:
        release = store.new_release(project, "0123456789abcdef", "services: {}")
        store.finish(project, release.number, LIVE, "healthy in 3 s")
        store.audit(AuditEntry(time.time(), project, "alice", "deploy", "ok", "r1 live"))
    report = investigations_dir(world.config()) / slugify(project) / "20261130-1" / "REPORT.md"
    report.parent.mkdir(parents=True)
    report.write_text("# Investigation\n\n## Answer\nThe disk was full <b>now</b>.\n")


def _git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


def test_costs_per_day_and_project_against_the_budgets_as_a_chart(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS, budget=BUDGET) as dashboard:
        store = StateStore(dashboard.world.state / "sidekick.db")
        _past_run(store, "beta", 1, 1.5)
        _past_run(store, "beta", 2, 3.0)
        _past_run(store, "alpha", 2, 0.25)
        store.close()
        log_in(page, dashboard)
        page.get_by_role("link", name="Costs").click()
        expect(page.locator("main")).to_contain_text("Total spent: $4.75 of a $20.00 budget")
        expect(page.locator("svg.chart rect")).to_have_count(2)
        expect(page.locator(".by-day")).to_contain_text("2026-11-02")
        expect(page.locator(".by-project tr", has_text="beta")).to_contain_text("56 %")
        screenshot(page, "costs")


def test_agents_and_health_show_the_live_agent_and_the_daemons_heartbeat(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        log_in(page, dashboard)
        page.get_by_role("link", name="Agents").click()
        agent = page.locator("table.agents tbody tr", has_text="sidekick-alpha")
        expect(agent).to_contain_text("tmux")
        expect(agent).to_contain_text("running")
        screenshot(page, "agents")
        page.get_by_role("link", name="Health").click()
        expect(page.get_by_role("status")).to_contain_text("Healthy")
        expect(page.locator("main")).to_contain_text("List watcher")
        screenshot(page, "health")


def test_a_project_page_shows_its_runs_and_the_change_in_its_git_workspace(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        workspace = dashboard.world.root / "projects" / "beta"
        _git(workspace, "init", "-q")
        (workspace / "app.py").write_text("print('one')\n")
        _git(workspace, "add", "app.py")
        _git(workspace, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one")
        (workspace / "app.py").write_text("print('two') # <script>alert(1)</script>\n")
        store = StateStore(dashboard.world.state / "sidekick.db")
        _past_run(store, "beta", 3, 0.5)
        store.close()
        _production_and_investigation(dashboard.world, "beta")
        log_in(page, dashboard)
        page.get_by_role("link", name="alpha").click()
        expect(page.locator("h1")).to_have_text("alpha")
        # Panels for data that does not exist are not shown at all.
        assert page.get_by_role("heading", name="Production").count() == 0
        assert page.get_by_role("heading", name="Latest investigation").count() == 0
        page.get_by_role("link", name="Projects").click()
        page.get_by_role("link", name="beta").click()
        expect(page.locator("table.releases")).to_contain_text("r1")
        expect(page.locator("table.releases")).to_contain_text("live")
        expect(page.locator(".prod-audit")).to_contain_text("deploy ok by alice")
        expect(page.locator(".investigation")).to_contain_text("The disk was full")
        runs = page.locator("table.runs tbody tr")
        expect(runs).to_have_count(1)
        expect(runs).to_contain_text("Complete")
        expect(runs).to_contain_text("sess-1")
        expect(runs).to_contain_text("1200/340")
        expect(page.locator(".diffstat")).to_contain_text("app.py | 2 +-")
        page.get_by_text("The diff").click()
        expect(page.locator(".diff")).to_contain_text("+print('two') # <script>alert(1)</script>")
        assert page.locator(".diff script").count() == 0
        expect(page.locator("main")).to_contain_text("No agent is running for this project.")
        screenshot(page, "project-git")
