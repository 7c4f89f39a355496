from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import docker

from sidekick.models import AgentRun
from sidekick.production.store import ProductionStore
from sidekick.state import RunEnd, StateStore
from tests.polling import wait_until
from tests.production.fixture import SECRET, ProdApp


def _snapshot(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _releases(app: ProdApp) -> list[tuple[str, str]]:
    with ProductionStore(app.root / "state" / "sidekick.db") as store:
        return [(r.name, r.state) for r in store.releases(app.name)]


def _audit(app: ProdApp) -> list[tuple[str, str]]:
    with ProductionStore(app.root / "state" / "sidekick.db") as store:
        return [(e.action, e.outcome) for e in store.audit_log(app.name)]


def _change(app: ProdApp, version: str, health: str = "ok") -> None:
    (app.workspace / "VERSION").write_text(f"{version}\n")
    (app.workspace / "health.txt").write_text(f"{health}\n")
    app.commit(f"version {version}")


def _deployed(app: ProdApp, *versions: str) -> None:
    """Each version committed and deployed in turn, each deploy going live."""
    for version in versions:
        _change(app, version)
        assert app.sidekick("deploy", app.name, "--yes").returncode == 0


def test_a_committed_change_is_deployed_and_served(prod_app: ProdApp) -> None:
    _change(prod_app, "2")
    (prod_app.workspace / "notes.txt").write_text("new file\n")
    prod_app.commit("notes")
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "~ VERSION" in result.stdout and "+ notes.txt" in result.stdout
    assert "images to rebuild: web" in result.stdout
    assert prod_app.version() == "2"
    assert (prod_app.production / "notes.txt").read_text() == "new file\n"
    assert _releases(prod_app) == [("r1", "live")]
    assert _audit(prod_app)[0] == ("deploy", "deployed")
    (status,) = prod_app.status_json()
    assert status["containers"][0]["release"] == "r1"
    history = prod_app.sidekick("history", prod_app.name)
    assert "r1" in history.stdout and "deployed" in history.stdout
    assert SECRET not in result.stdout + result.stderr + history.stdout
    # The row says so through the daemon's outbox, so the undeployed figure is no longer stale.
    assert _row_note(prod_app).endswith("· deployed r1")


def _row_note(app: ProdApp) -> str:
    store = StateStore(app.root / "state" / "sidekick.db")
    try:
        updates, _ = store.pending_updates()
    finally:
        store.close()
    (update,) = [u for u in updates if u.project == app.name]
    assert update.status is None and update.agent is None
    return update.last_update or ""


def test_a_change_that_breaks_the_health_check_is_rolled_back_byte_for_byte(
    prod_app: ProdApp,
) -> None:
    before = _snapshot(prod_app.production)
    prod_app.config.write_text(
        prod_app.config.read_text().replace("wait_timeout: 30", "wait_timeout: 5")
    )
    _change(prod_app, "3", health="broken-on-purpose")
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 1, result.stdout
    assert "r1 failed: health check timed out after 5 s" in result.stderr
    assert "health answered 500 broken-on-purpose" in result.stderr
    assert "production runs the release before it again" in result.stderr
    assert prod_app.version() == "1"
    assert _snapshot(prod_app.production) == before
    (status,) = prod_app.status_json()
    assert status["containers"][0]["health"] == "healthy"
    assert _releases(prod_app) == [("r1", "rolled-back")]
    assert _audit(prod_app)[0] == ("deploy", "rolled back")
    assert SECRET not in result.stdout + result.stderr


def test_rollback_returns_to_the_previous_release_behind_the_health_gate(
    prod_app: ProdApp,
) -> None:
    _deployed(prod_app, "2", "3")
    assert prod_app.version() == "3"
    result = prod_app.sidekick("rollback", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert prod_app.version() == "2"
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]
    same = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert same.returncode == 2 and "r1 is what production runs now" in same.stderr
    unknown = prod_app.sidekick("rollback", prod_app.name, "r9", "--yes")
    assert unknown.returncode == 2 and "there is no release r9" in unknown.stderr
    assert prod_app.version() == "2"
    result = prod_app.sidekick("rollback", prod_app.name, "r0", "--yes")
    assert result.returncode == 0, result.stderr
    assert prod_app.version() == "1"
    assert (prod_app.production / "VERSION").read_text() == "1\n"
    assert _row_note(prod_app).endswith("· rolled back to r0")


def test_dirty_workspace_and_dry_run_change_nothing_and_are_audited(prod_app: ProdApp) -> None:
    before = _snapshot(prod_app.production)
    (prod_app.workspace / "VERSION").write_text("9\n")
    refused = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert refused.returncode == 2 and "uncommitted changes (VERSION)" in refused.stderr
    # A dry run still shows the plan, and says (exit code too) the deploy would be refused.
    dry = prod_app.sidekick("deploy", prod_app.name, "--dry-run")
    assert dry.returncode == 2
    assert "files: 0 added, 1 changed, 0 deleted" in dry.stdout and "~ VERSION" in dry.stdout
    assert "dry run: the deploy would be refused: the workspace has uncommitted" in dry.stderr
    dry_json = json.loads(prod_app.sidekick("deploy", prod_app.name, "--dry-run", "--json").stdout)
    assert dry_json["exit"] == 2 and dry_json["plan"]["changed"] == ["VERSION"]
    assert "would be refused" in dry_json["detail"]
    prod_app.commit("nine")
    plan = prod_app.sidekick("deploy", prod_app.name, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["plan"]["changed"] == ["VERSION"]
    unconfirmed = prod_app.sidekick("deploy", prod_app.name)
    assert unconfirmed.returncode == 2 and "no terminal" in unconfirmed.stderr
    assert _snapshot(prod_app.production) == before and prod_app.version() == "1"
    assert [outcome for _, outcome in _audit(prod_app)] == [
        "refused",
        "planned",
        "planned, would be refused",
        "planned, would be refused",
        "refused",
    ]
    assert SECRET not in plan.stdout + refused.stderr


def _deploying(app: ProdApp) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "sidekick", "prod", "deploy", app.name, "--yes"]
    return subprocess.Popen(
        [*argv, "--config", str(app.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=app.env(),
    )


def test_two_deploys_at_once_the_second_refuses(prod_app: ProdApp) -> None:
    _change(prod_app, "4")
    first = _deploying(prod_app)
    try:
        wait_until(lambda: _releases(prod_app), timeout=60, what="the first deploy started")
        second = prod_app.sidekick("deploy", prod_app.name, "--yes")
        assert second.returncode == 2
        assert "another deploy is running" in second.stderr
    finally:
        assert first.wait(timeout=120) == 0
    assert prod_app.version() == "4"


def test_a_deploy_killed_midway_is_undone_by_the_next_one(prod_app: ProdApp) -> None:
    _change(prod_app, "5")
    journal = prod_app.root / "state" / "production" / "shop" / "r1" / "journal.json"
    victim = _deploying(prod_app)
    wait_until(journal.exists, timeout=60, what="the deploy wrote its journal")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert _releases(prod_app) == [("r1", "deploying")]
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert _releases(prod_app) == [("r2", "live"), ("r1", "rolled-back")]
    assert prod_app.version() == "5"
    (status,) = prod_app.status_json()
    assert status["containers"][0]["health"] == "healthy"


def test_a_deploy_waits_for_the_projects_agent_to_finish(prod_app: ProdApp) -> None:
    _change(prod_app, "6")
    store = StateStore(prod_app.root / "state" / "sidekick.db")
    try:
        run = AgentRun("run-1", prod_app.name, "sidekick-shop", ("claude",), datetime.now(UTC))
        store.begin_run(run)
        result = prod_app.sidekick("deploy", prod_app.name, "--yes")
        assert result.returncode == 2
        assert "an agent of this project is running" in result.stderr
        store.end_run("run-1", RunEnd("ended", datetime.now(UTC), 0, "done", "complete"))
    finally:
        store.close()
    assert prod_app.version() == "1"
    assert _audit(prod_app)[0] == ("deploy", "refused")


def test_a_failing_smoke_check_rolls_back_and_says_what_it_answered(prod_app: ProdApp) -> None:
    port = prod_app.port()
    smoke = (
        "        smoke:\n"
        "          - {service: web, command: [python3, /app/probe.py]}\n"
        f"          - {{url: 'http://127.0.0.1:{port}/health'}}\n"
        f"          - {{url: 'http://127.0.0.1:{port}/missing'}}\n"
    )
    prod_app.config.write_text(prod_app.config.read_text() + smoke)
    _change(prod_app, "7")
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 1
    assert f"smoke check GET http://127.0.0.1:{port}/missing failed: HTTP 404" in result.stderr
    assert prod_app.version() == "1"
    assert (prod_app.production / "VERSION").read_text() == "1\n"


def _release_tags(app: ProdApp) -> set[str]:
    """The tags of the app's image repository (the built one and the release tags)."""
    client = docker.from_env()
    try:
        images = client.images.list(name=f"{app.compose_project}-web")
    finally:
        client.close()
    return {tag.rsplit(":", 1)[1] for image in images for tag in image.tags}


def test_releases_beyond_keep_lose_their_backup_and_image_tags_and_the_kept_roll_back(
    prod_app: ProdApp,
) -> None:
    config = prod_app.config.read_text().replace("wait_timeout: 30", "wait_timeout: 5")
    prod_app.config.write_text(config + "        keep: 2\n")
    for version, health, code in (("2", "ok", 0), ("3", "ok", 0), ("4", "ok", 0), ("x", "no", 1)):
        _change(prod_app, version, health)
        assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == code
    _change(prod_app, "5")
    assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == 0
    # r4 failed and was rolled back: it holds no place, so r3 is kept with r5.
    home = prod_app.root / "state" / "production" / "shop"
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == ["objects", "r3", "r5"]
    tags = {f"sidekick-{prod_app.compose_project}-r{n}" for n in (3, 5)}
    assert _release_tags(prod_app) == {"latest", *tags}
    assert prod_app.sidekick("rollback", prod_app.name, "--yes").returncode == 0
    assert prod_app.version() == "4"
    # r0 to r2 were pruned: going back to them is refused, and nothing moves.
    for gone_to in ("r2", "r0"):
        gone = prod_app.sidekick("rollback", prod_app.name, gone_to, "--yes")
        assert gone.returncode == 2
        assert (
            f"{gone_to}'s files and images are no longer kept (deploy.keep is 2; kept: r3, r5)"
            in gone.stderr
        )
    failed = prod_app.sidekick("rollback", prod_app.name, "r4", "--yes")
    assert failed.returncode == 2 and "r4 never went live" in failed.stderr
    assert prod_app.version() == "4"
    assert (prod_app.production / "VERSION").read_text() == "4\n"
    # r5, rolled back but kept, comes back whole.
    forward = prod_app.sidekick("rollback", prod_app.name, "r5", "--yes")
    assert forward.returncode == 0, forward.stderr
    assert prod_app.version() == "5"
    (status,) = prod_app.status_json()
    assert status["containers"][0]["health"] == "healthy"


def _served_release(app: ProdApp) -> str:
    (status,) = app.status_json()
    return status["containers"][0]["release"]


def test_a_named_release_rolled_back_before_comes_back_with_its_own_files_and_image(
    prod_app: ProdApp,
) -> None:
    """The sequence of issue 11: deploy v2 (r1), roll back (r0), deploy v3 (r2), then roll
    back to r1 by name: r1's own files and image, not r2's backup (which holds r0's)."""
    _change(prod_app, "2")
    assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == 0
    at_r1, image_r1 = _snapshot(prod_app.production), prod_app.web_image()
    assert prod_app.version() == "2"
    assert prod_app.sidekick("rollback", prod_app.name, "--yes").returncode == 0
    assert prod_app.version() == "1"
    _change(prod_app, "3")
    assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == 0
    assert prod_app.version() == "3"
    result = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert result.returncode == 0, result.stderr
    assert "back on r1: 1 container(s) healthy" in result.stdout
    # No smoke check is configured: the answer says nothing about smoke checks.
    assert "smoke" not in result.stdout + result.stderr
    assert prod_app.version() == "2"
    assert _snapshot(prod_app.production) == at_r1
    assert prod_app.web_image() == image_r1
    assert _served_release(prod_app) == "r1"
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]
    # And on to r0 and back to r2, each whole.
    assert prod_app.sidekick("rollback", prod_app.name, "--yes").returncode == 0
    assert prod_app.version() == "1"
    assert (prod_app.production / "VERSION").read_text() == "1\n"
    assert prod_app.sidekick("rollback", prod_app.name, "r2", "--yes").returncode == 0
    assert prod_app.version() == "3"
    assert (prod_app.production / "VERSION").read_text() == "3\n"
    assert _served_release(prod_app) == "r2"


def test_files_a_later_release_added_or_deleted_are_put_back_as_the_named_release_had_them(
    prod_app: ProdApp,
) -> None:
    config = prod_app.config.read_text() + "        delete: true\n"
    prod_app.config.write_text(config)
    initial = _snapshot(prod_app.production)
    (prod_app.workspace / "notes.txt").write_text("notes of r1\n")
    (prod_app.workspace / "run.sh").write_text("#!/bin/sh\n")
    (prod_app.workspace / "run.sh").chmod(0o755)
    _change(prod_app, "2")
    assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == 0
    at_r1 = _snapshot(prod_app.production)
    (prod_app.workspace / "notes.txt").unlink()
    (prod_app.workspace / "later.txt").write_text("added by r2\n")
    _change(prod_app, "3")
    assert prod_app.sidekick("deploy", prod_app.name, "--yes").returncode == 0
    assert not (prod_app.production / "notes.txt").exists()
    assert prod_app.sidekick("rollback", prod_app.name, "r0", "--yes").returncode == 0
    assert _snapshot(prod_app.production) == initial
    result = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert result.returncode == 0, result.stderr
    assert _snapshot(prod_app.production) == at_r1
    assert (prod_app.production / "run.sh").stat().st_mode & 0o777 == 0o755
    assert not (prod_app.production / "later.txt").exists()
    assert prod_app.version() == "2"


def test_a_rollback_that_fails_its_gate_goes_back_to_what_ran_before(prod_app: ProdApp) -> None:
    _deployed(prod_app, "2", "3")
    at_r2 = _snapshot(prod_app.production)
    port = prod_app.port()
    smoke = f"        smoke:\n          - {{url: 'http://127.0.0.1:{port}/missing'}}\n"
    prod_app.config.write_text(prod_app.config.read_text() + smoke)
    result = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert result.returncode == 1
    assert "rollback to r1 failed: smoke check" in result.stderr
    assert "HTTP 404: not found; production runs r2 again" in result.stderr
    assert prod_app.version() == "3"
    assert _snapshot(prod_app.production) == at_r2
    assert _releases(prod_app) == [("r2", "live"), ("r1", "superseded")]
    assert _audit(prod_app)[0] == ("rollback r1", "failed")


def test_a_failed_health_probe_is_one_line_in_the_reason_and_whole_in_the_audit_log(
    prod_app: ProdApp,
) -> None:
    prod_app.config.write_text(
        prod_app.config.read_text().replace("wait_timeout: 30", "wait_timeout: 5")
    )
    # A probe that dies with a traceback, as most do: its last line says what went wrong.
    (prod_app.workspace / "probe.py").write_text(
        "import urllib.request\n"
        "def probe(url):\n"
        "    return urllib.request.urlopen(url, timeout=1)\n"
        "probe('http://127.0.0.1:8000/health')\n\n"
    )
    _change(prod_app, "8", health="broken")
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 1
    (reason,) = [line for line in result.stderr.splitlines() if "r1 failed" in line]
    probe = "last probe: urllib.error.HTTPError: HTTP Error 500: Internal Server Error;"
    assert probe in reason
    assert "Traceback" not in reason and len(reason) < 400
    with ProductionStore(prod_app.root / "state" / "sidekick.db") as store:
        (release,) = store.releases(prod_app.name)
        entry = store.audit_log(prod_app.name)[0]
    assert "Traceback" not in release.detail and "\n" not in release.detail
    first, _, output = entry.detail.partition("\n")
    assert first == reason
    assert "Traceback (most recent call last)" in output and "line 4, in <module>" in output
    history = prod_app.sidekick("history", prod_app.name)
    assert "Traceback" not in history.stdout


def test_a_rollback_killed_midway_is_undone_by_the_next_command(prod_app: ProdApp) -> None:
    _deployed(prod_app, "2", "3")
    at_r2 = _snapshot(prod_app.production)
    journal = prod_app.root / "state" / "production" / "shop" / "rollback" / "journal.json"
    prod_app.kill_when(journal, "rollback", prod_app.name, "r1", "--yes")
    result = prod_app.sidekick("deploy", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "nothing to deploy" in result.stdout
    assert not journal.exists()
    assert _snapshot(prod_app.production) == at_r2
    assert prod_app.version() == "3"
    assert _releases(prod_app) == [("r2", "live"), ("r1", "superseded")]
    back = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert back.returncode == 0, back.stderr
    assert prod_app.version() == "2"


def test_a_release_whose_image_is_gone_is_refused_and_nothing_moves(prod_app: ProdApp) -> None:
    _deployed(prod_app, "2", "3")
    at_r2 = _snapshot(prod_app.production)
    client = docker.from_env()
    try:
        project = prod_app.compose_project
        client.images.remove(f"{project}-web:sidekick-{project}-r1", noprune=True)
    finally:
        client.close()
    result = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert result.returncode == 2
    assert f"the image {prod_app.compose_project}-web of r1 (sha256:" in result.stderr
    assert "is gone" in result.stderr
    assert _snapshot(prod_app.production) == at_r2 and prod_app.version() == "3"
    assert _audit(prod_app)[0] == ("rollback r1", "refused")
