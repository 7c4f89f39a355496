"""Who gets what: no data without a login, no change without the session's CSRF token."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from sidekick.web.action_requests import ActionRequest, ActionRequests
from sidekick.web.auth import hash_password
from tests.daemon.world import World
from tests.web.conftest import log_in, screenshot
from tests.web.dashboard import TOKEN, USER, Dashboard, running_dashboard

# A form as playwright posts it (its form= takes this dict, or FormData).
Form = dict[str, str | float | bool]

ROWS = ["alpha,1,Pending,,,Secret plans for alpha,,,", "beta,2,Failed,,,Retry beta,,,"]
DATA_PATHS = [
    "/",
    "/project?name=alpha",
    "/agents",
    "/costs",
    "/health",
    "/events",
    "/metrics",
    "/output?name=alpha",
]

METRICS = (
    "sidekick_agents_running",
    "sidekick_daemon_healthy",
    "sidekick_cost_usd",
    "sidekick_reconcile_duration_seconds",
    "sidekick_watcher_alive 1.0",
)


def _no_data(status: int, body: str) -> None:
    assert status in (303, 401), status
    assert "alpha" not in body and "Secret plans" not in body


def test_a_wrong_or_missing_token_gets_no_data(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        for path in DATA_PATHS:
            _no_data(*dashboard.get(path))
        log_in(page, dashboard, secret=TOKEN + "-wrong")
        expect(page.get_by_role("alert")).to_contain_text("do not match")
        assert "alpha" not in page.content()
        screenshot(page, "login-refused")
        for path in DATA_PATHS:
            response = page.request.get(dashboard.url + path, max_redirects=0)
            _no_data(response.status, response.text() if response.status != 303 else "")
        bearer = {"Authorization": f"Bearer {TOKEN}-wrong"}
        assert page.request.get(dashboard.url + "/metrics", headers=bearer).status == 401


def test_a_token_as_bearer_reads_the_metrics(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        response = page.request.get(
            dashboard.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status == 200
        text = response.text()
        for metric in METRICS:
            assert metric in text
        assert 'sidekick_runs_total{outcome="",state="running"} 1.0' in text
        # A bearer token reads; it never changes anything.
        form: Form = {"action": "stop", "project": "alpha", "csrf": "x"}
        refused = page.request.post(
            dashboard.url + "/actions", form=form, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert refused.status == 401


def test_a_form_without_the_csrf_token_is_refused(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        log_in(page, dashboard)
        expect(page.locator('tr[data-project="alpha"] .status')).to_have_text("In Progress")
        forged: tuple[Form, ...] = (
            {"action": "requeue", "project": "beta"},
            {"action": "requeue", "project": "beta", "csrf": "forged"},
        )
        for form in forged:
            response = page.request.post(dashboard.url + "/actions", form=form, max_redirects=0)
            assert response.status == 403
            assert "CSRF" in response.text()
        logout = page.request.post(dashboard.url + "/logout", form={}, max_redirects=0)
        assert logout.status == 403
        assert _requests(dashboard) == []
        # The same action through the page's own form goes through.
        page.goto(dashboard.url + "/actions/confirm?action=requeue&project=beta")
        page.get_by_role("button", name="Confirm: re-queue the project").click()
        assert [(r.user, r.action, r.project) for r in _requests(dashboard)] == [
            (USER, "requeue", "beta")
        ]


def test_a_login_form_without_its_csrf_token_is_refused(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    with running_dashboard(tmp_path, worlds, ROWS) as dashboard:
        form: Form = {"user": USER, "secret": TOKEN}
        response = page.request.post(dashboard.url + "/login", form=form, max_redirects=0)
        assert response.status == 403
        assert page.request.get(dashboard.url + "/", max_redirects=0).status == 401


def test_a_hashed_password_logs_in_as_its_user_and_log_out_ends_the_session(
    page: Page, worlds: list[World], tmp_path: Path
) -> None:
    password = "correct horse battery staple"
    bob = f"bob:{hash_password(password)}\n"
    with running_dashboard(tmp_path, worlds, ROWS, more_credentials=bob) as dashboard:
        assert password not in dashboard.secret_file.read_text()
        log_in(page, dashboard, secret=password, user="bob")
        logout = page.get_by_role("button", name="Log out bob")
        expect(logout).to_be_visible()
        logout.click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert page.request.get(dashboard.url + "/agents", max_redirects=0).status == 401
        # Alice's token is not Bob's password.
        log_in(page, dashboard, secret=TOKEN, user="bob")
        expect(page.get_by_role("alert")).to_contain_text("do not match")


def _requests(dashboard: Dashboard) -> list[ActionRequest]:
    requests = ActionRequests(dashboard.world.state / "sidekick.db")
    try:
        return list(requests.recent())
    finally:
        requests.close()
