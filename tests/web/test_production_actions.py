"""Production on the dashboard: the undeployed figure, and restart, deploy and rollback
shown with their plan, confirmed, and carried out by the daemon."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from sidekick.daemon import Daemon
from sidekick.production.store import ProductionStore
from sidekick.web.action_requests import RESTART, RUNNING, ActionRequests
from tests.daemon.world import World, make_world
from tests.polling import wait_until
from tests.production.conftest import engine_ready, prod_app
from tests.production.fixture import ProdApp, make_app
from tests.production.test_restart import _started_at
from tests.web.conftest import log_in, screenshot
from tests.web.dashboard import USER, running_dashboard

# The production tests' fixtures: the fixture app running healthy on the real engine.
__all__ = ["engine_ready", "prod_app"]

ROW = "Shop,1,Complete,,2026-11-30 10:00 UTC · done · 1 file not deployed,Watch it,,,"


def _projects(app: ProdApp) -> dict[str, object]:
    production = {
        "path": str(app.production),
        "compose_project": app.compose_project,
        "primary": "web",
        "deploy": {"wait_timeout": 30},
    }
    return {"Shop": {"directory": str(app.workspace), "production": production}}


def test_a_confirmed_restart_is_carried_out_by_the_daemon_in_a_worker_and_answered(
    prod_app: ProdApp, worlds: list[World]
) -> None:
    (prod_app.root / "world").mkdir()
    world = make_world(
        prod_app.root / "world", [], ["true"], rows=[ROW], projects=_projects(prod_app)
    )
    worlds.append(world)
    daemon = Daemon(world.config())
    requests = ActionRequests(world.state / "sidekick.db")
    before = _started_at(prod_app)
    requests.submit(USER, RESTART, "Shop")
    daemon.run_once()
    # The reconcile is over while the restart still waits for health in its worker.
    assert requests.recent()[0].state == RUNNING
    wait_until(lambda: requests.recent()[0].state != RUNNING, timeout=90, what="the answer")
    (answered,) = requests.recent()
    assert answered.state == "done", answered.answer
    assert answered.answer.endswith("1 container(s) healthy")
    assert _started_at(prod_app) != before
    with ProductionStore(world.state / "sidekick.db") as store:
        entry = store.audit_log("Shop")[0]
    assert (entry.action, entry.outcome, entry.who) == ("restart", "healthy", f"{USER} (dashboard)")


def test_production_actions_show_their_plan_and_a_confirmed_one_is_answered_by_the_daemon(
    page: Page, worlds: list[World], tmp_path: Path, engine_ready: None
) -> None:
    app = make_app(tmp_path / "app")
    (app.workspace / "VERSION").write_text("2\n")
    app.commit("version 2")
    with running_dashboard(tmp_path, worlds, [ROW], projects=_projects(app)) as dashboard:
        log_in(page, dashboard)
        shop = page.locator('tr[data-project="Shop"]')
        expect(shop.locator(".undeployed")).to_have_text("1 file")
        shop.get_by_role("link", name="Deploy").click()
        # The file plan is production's own, read from the two directories.
        expect(page.locator(".plan-lines")).to_contain_text("~ VERSION")
        screenshot(page, "confirm-deploy")
        page.goto(dashboard.url + "/actions/confirm?action=rollback&project=Shop")
        expect(page.locator("main")).to_contain_text("Shop has no live release to roll back")
        page.goto(dashboard.url + "/")
        shop.get_by_role("link", name="Restart production").click()
        expect(page.locator(".plan")).to_contain_text("restart the production containers of Shop")
        page.get_by_role("button", name="Confirm: restart production").click()
        page.get_by_role("link", name="Projects").click()
        # Nothing of this app runs: the daemon looks, finds no container, and says so.
        requests = page.locator(".requests")
        expect(requests).to_contain_text("no containers for any service", timeout=20_000)
        expect(requests.locator(".request-state").first).to_have_text("refused")
