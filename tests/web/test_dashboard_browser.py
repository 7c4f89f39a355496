"""The dashboard in Debian's Chromium, against a real daemon running real tmux agents."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.daemon.world import World
from tests.web.conftest import log_in, screenshot
from tests.web.dashboard import TOKEN, USER, running_dashboard

ROWS = [
    "alpha,1,Pending,,,Ship the login page,2026-12-31,,",
    "beta,2,Failed,,2026-11-01 · failed (exit 1),Fix the tests,,yes,",
    "gamma,3,Complete,,,Write docs,,,",
    "broken,zz,Pending,,,A row with a bad priority,,,",
]


def row(page: Page, project: str) -> Locator:
    return page.locator(f'tr[data-project="{project}"]')


def test_log_in_and_the_projects_table_shows_the_fixture_list(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        log_in(page, dashboard)
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        expect(row(page, "alpha").locator(".status")).to_have_text("In Progress")
        expect(row(page, "beta").locator(".status")).to_have_text("Failed")
        expect(row(page, "gamma").locator(".status")).to_have_text("Complete")
        expect(row(page, "alpha")).to_contain_text("2026-12-31")
        # The bad row is not served; its problem names the file, the line and the field.
        expect(page.locator(".findings")).to_contain_text("priorities.csv:5 [Priority]")
        expect(page.get_by_role("button", name=f"Log out {USER}")).to_be_visible()
        screenshot(page, "projects")
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "projects-phone")


def test_a_rename_save_of_the_csv_appears_in_the_open_page_within_a_second_without_reload(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        log_in(page, dashboard)
        expect(row(page, "alpha").locator(".status")).to_have_text("In Progress")
        page.evaluate("window.sameDocument = true")
        page.evaluate("window.gamma = document.querySelector('tr[data-project=\"gamma\"]')")
        saved = time.monotonic()
        dashboard.world.save([*ROWS[:3], "delta,4,Blocked,,,Added by a save,,,"])
        page.wait_for_selector('tr[data-project="delta"]', timeout=5_000)
        seen = time.monotonic() - saved
        assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
        # Only what changed is sent: the untouched row is the same element as before.
        same = "window.gamma === document.querySelector('tr[data-project=\"gamma\"]')"
        assert page.evaluate(same) is True
        assert seen < 1.0, f"the save showed after {seen:.2f} s"
        expect(page.locator(".findings")).to_have_count(0)
        # What the live updates built is what a new page shows.
        rows = "[...document.querySelectorAll('table.projects tbody tr')].map(r => r.outerHTML)"
        live = page.evaluate(rows)
        page.reload()
        assert page.evaluate(rows) == live


def test_a_running_agents_output_streams_into_its_page_as_text(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS[:1]) as dashboard:
        log_in(page, dashboard)
        page.get_by_role("link", name="alpha").click()
        output = page.locator("#output")
        expect(output).to_contain_text("tick")
        first = _last_tick(output.text_content() or "")
        page.wait_for_function(
            f"() => /tick (\\d+)/.test(document.querySelector('#output').textContent)"
            f" && Math.max(...[...document.querySelector('#output').textContent"
            f".matchAll(/tick (\\d+)/g)].map(m => +m[1])) >= {first + 10}"
        )
        text = output.text_content() or ""
        # The agent's markup stays text; its scripts stay whole.
        assert "<b>bold</b> Привет 日本語 🙂" in text
        assert output.locator("b").count() == 0
        screenshot(page, "project")


def _last_tick(text: str) -> int:
    return max((int(n) for n in re.findall(r"tick (\d+)", text)), default=0)


def test_stop_an_agent_through_the_confirmation_and_its_row_changes(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS[:1]) as dashboard:
        log_in(page, dashboard)
        expect(row(page, "alpha").locator(".status")).to_have_text("In Progress")
        row(page, "alpha").get_by_role("link", name="Stop agent").click()
        expect(page.locator(".plan")).to_contain_text("stop the agent of alpha")
        screenshot(page, "confirm")
        page.get_by_role("button", name="Confirm: stop the agent").click()
        page.get_by_role("link", name="Projects").click()
        expect(row(page, "alpha").locator(".status")).to_have_text("Blocked", timeout=15_000)
        expect(row(page, "alpha").locator(".request-state")).to_have_count(0)
        expect(page.locator(".requests")).to_contain_text("done")
        page.get_by_role("link", name="alpha").click()
        audit = page.locator(".events")
        expect(audit).to_contain_text("stopped by alice from the dashboard")
        expect(audit).to_contain_text(f"({USER})")
        assert dashboard.world.sessions() == []


def test_read_only_mode_shows_no_action(page: Page, worlds: list[World], tmp_path: Path) -> None:
    with running_dashboard(tmp_path, worlds, ROWS, read_only=True) as dashboard:
        log_in(page, dashboard)
        expect(row(page, "alpha").locator(".status")).to_have_text("In Progress")
        expect(page.locator(".banner")).to_contain_text("Read-only")
        assert page.get_by_role("link", name="Stop agent").count() == 0
        assert page.get_by_role("link", name="Re-queue").count() == 0
        assert page.get_by_role("columnheader", name="Actions").count() == 0
        page.get_by_role("link", name="alpha").click()
        assert page.get_by_role("link", name="Stop agent").count() == 0
        response = page.goto(dashboard.url + "/actions/confirm?action=stop&project=alpha")
        assert response is not None and response.status == 404
        screenshot(page, "read-only")


def test_the_keyboard_alone_logs_in_and_moves_between_pages(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS[:1]) as dashboard:
        page.goto(dashboard.url + "/")
        page.keyboard.press("Tab")  # the skip link
        page.keyboard.press("Tab")
        page.keyboard.type(USER)
        page.keyboard.press("Tab")
        page.keyboard.type(TOKEN)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        for _ in range(3):  # skip link, Projects, Agents
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Agents")).to_be_visible()
