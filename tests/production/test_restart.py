from __future__ import annotations

import json

import docker

from sidekick.production.store import ProductionStore
from tests.production.fixture import SECRET, ProdApp


def _audit(app: ProdApp) -> list[tuple[str, str, str]]:
    with ProductionStore(app.root / "state" / "sidekick.db") as store:
        return [(e.action, e.outcome, e.detail) for e in store.audit_log(app.name)]


def _started_at(app: ProdApp) -> str:
    client = docker.from_env()
    try:
        (container,) = client.containers.list(
            filters={"label": f"com.docker.compose.project={app.compose_project}"}
        )
        return str(container.attrs["State"]["StartedAt"])
    finally:
        client.close()


def test_restart_without_a_terminal_and_without_yes_refuses_and_is_audited(
    prod_app: ProdApp,
) -> None:
    before = _started_at(prod_app)
    result = prod_app.sidekick("restart", prod_app.name)
    assert result.returncode == 2
    assert "no terminal to confirm on" in result.stderr
    assert _started_at(prod_app) == before
    assert _audit(prod_app)[0][:2] == ("restart", "refused")


def test_restart_with_yes_restarts_and_waits_until_healthy(prod_app: ProdApp) -> None:
    before = _started_at(prod_app)
    result = prod_app.sidekick("restart", prod_app.name, "web", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["detail"] == "1 container(s) healthy"
    assert _started_at(prod_app) != before
    (project,) = prod_app.status_json()
    assert project["containers"][0]["health"] == "healthy"
    assert prod_app.version() == "1"
    action, outcome, _ = _audit(prod_app)[0]
    assert (action, outcome) == ("restart", "healthy")
    assert SECRET not in result.stdout + result.stderr


def test_restart_of_a_service_that_stays_unhealthy_exits_1_with_the_probe_output(
    prod_app: ProdApp,
) -> None:
    prod_app.compose("exec", "-T", "web", "sh", "-c", "echo down-for-test > /app/health.txt")
    text = prod_app.config.read_text().replace("wait_timeout: 30", "wait_timeout: 4")
    prod_app.config.write_text(text)
    result = prod_app.sidekick("restart", prod_app.name, "--yes")
    assert result.returncode == 1
    assert "health check timed out after 4 s" in result.stderr
    assert "health answered 500 down-for-test" in result.stderr
    assert _audit(prod_app)[0][1] == "unhealthy"
    (project,) = prod_app.status_json()
    (row,) = project["containers"]
    assert row["health"] == "unhealthy" and row["restarts"] == 0
    assert row["probe"] == "health answered 500 down-for-test"
    assert row["oom_killed"] is False
    table = prod_app.sidekick("status", prod_app.name)
    assert table.returncode == 1
    assert "last probe: health answered 500 down-for-test" in table.stdout
