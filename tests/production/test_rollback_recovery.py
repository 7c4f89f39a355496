"""Rollbacks across pruning and interruptions: what a rollback needs is kept, and a killed
rollback or deploy is told apart from a finished one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sidekick.production.journal import BACKUP, Journal
from sidekick.production.snapshots import Snapshot, surplus
from sidekick.production.store import ProductionStore
from tests.production.fixture import ProdApp


def _home(app: ProdApp) -> Path:
    return app.root / "state" / "production" / "shop"


def _releases(app: ProdApp) -> list[tuple[str, str]]:
    with ProductionStore(app.root / "state" / "sidekick.db") as store:
        return [(r.name, r.state) for r in store.releases(app.name)]


def _change(app: ProdApp, version: str) -> None:
    (app.workspace / "VERSION").write_text(f"{version}\n")
    app.commit(f"version {version}")


def _deploy(app: ProdApp, version: str) -> None:
    _change(app, version)
    result = app.sidekick("deploy", app.name, "--yes")
    assert result.returncode == 0, result.stderr


def _kept(app: ProdApp) -> list[str]:
    return sorted(p.parent.name for p in _home(app).glob("r*/release.json"))


def test_keep_2_keeps_the_release_a_rollback_goes_back_to_after_an_earlier_rollback(
    prod_app: ProdApp,
) -> None:
    """deploy r1, r2; roll back (r1 live); deploy r3: r1 is what the next rollback needs,
    though r2 has the higher number."""
    prod_app.config.write_text(prod_app.config.read_text() + "        keep: 2\n")
    _deploy(prod_app, "2")
    _deploy(prod_app, "3")
    assert prod_app.sidekick("rollback", prod_app.name, "--yes").returncode == 0
    assert prod_app.version() == "2"
    _deploy(prod_app, "4")
    assert _kept(prod_app) == ["r1", "r3"]
    result = prod_app.sidekick("rollback", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "back on r1" in result.stdout
    assert prod_app.version() == "2"
    assert (prod_app.production / "VERSION").read_text() == "2\n"


def test_snapshots_past_keep_rank_by_when_they_were_last_live_not_by_number() -> None:
    snapshots = [
        Snapshot(5, live_at=50.0),
        Snapshot(4, live_at=40.0),
        Snapshot(3, live_at=30.0),
        Snapshot(1, live_at=60.0),  # rolled back to most recently
        Snapshot(0, live_at=10.0),
    ]
    # The live release and its previous release stay whatever their rank.
    assert surplus(snapshots, {1, 0}, 2) == [5, 4, 3]
    assert surplus(snapshots, {5, 4}, 3) == [3, 0]
    # Snapshots written before live_at existed rank by number among themselves.
    legacy = [Snapshot(2), Snapshot(3), Snapshot(1)]
    assert surplus(legacy, {3, 2}, 2) == [1]


def test_a_rollback_after_a_killed_rollback_rolls_back(prod_app: ProdApp) -> None:
    _deploy(prod_app, "2")
    _deploy(prod_app, "3")
    journal = _home(prod_app) / "rollback" / "journal.json"
    prod_app.kill_when(journal, "rollback", prod_app.name, "--yes")
    result = prod_app.sidekick("rollback", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "back on r1" in result.stdout
    assert prod_app.version() == "2"
    assert (prod_app.production / "VERSION").read_text() == "2\n"
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]
    assert not journal.exists()


def test_a_finished_rollback_whose_journal_was_left_is_not_undone(prod_app: ProdApp) -> None:
    """Killed after the store recorded the goal live, before the journal was removed."""
    _deploy(prod_app, "2")
    _deploy(prod_app, "3")
    where = _home(prod_app) / "rollback"
    images = Snapshot.read(_home(prod_app), 2)
    assert images is not None
    assert prod_app.sidekick("rollback", prod_app.name, "--yes").returncode == 0
    # The journal _restore wrote before it went back from r2 to r1, as a kill leaves it.
    (where / BACKUP).mkdir(parents=True)
    (where / BACKUP / "VERSION").write_text("3\n")
    Journal(1, [], ["VERSION"], images.images).write(where)
    result = prod_app.sidekick("rollback", prod_app.name, "r1", "--yes")
    assert result.returncode == 2
    assert "r1 is what production runs now" in result.stderr
    assert "undone" not in result.stdout + result.stderr
    assert not where.exists()
    assert (prod_app.production / "VERSION").read_text() == "2\n"
    assert prod_app.version() == "2"
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]


def test_a_deploy_killed_after_its_snapshot_is_undone_and_cannot_be_rolled_back_to(
    prod_app: ProdApp,
) -> None:
    """Killed after the snapshot and tags were written, before the release was recorded live."""
    _deploy(prod_app, "2")
    home = _home(prod_app)
    with ProductionStore(prod_app.root / "state" / "sidekick.db") as store:
        release = store.new_release(prod_app.name, "", "")
    shutil.copytree(home / "r1", home / release.name)
    data = json.loads((home / "r1" / "release.json").read_text())
    (home / release.name / "release.json").write_text(json.dumps({**data, "images": {}}))
    result = prod_app.sidekick("rollback", prod_app.name, release.name, "--yes")
    assert result.returncode == 2
    assert f"{release.name} never went live" in result.stderr
    assert not (home / release.name).exists()
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]
    assert prod_app.version() == "2"


def test_after_upgrading_a_release_without_snapshots_rolls_back_through_its_journal(
    prod_app: ProdApp,
) -> None:
    """Releases deployed before snapshots existed: a journal for the live release, no
    snapshot of any. A refused rollback must not discard that journal, and the rollback
    to the previous release goes through it."""
    _deploy(prod_app, "2")
    image_r1 = prod_app.web_image()
    _deploy(prod_app, "3")
    home = _home(prod_app)
    for stored in home.iterdir():
        shutil.rmtree(stored)
    # What the deploy of r2 left before snapshots: its backup and journal.
    (home / "r2" / BACKUP).mkdir(parents=True)
    (home / "r2" / BACKUP / "VERSION").write_text("2\n")
    Journal(2, [], ["VERSION"], {f"{prod_app.compose_project}-web": image_r1}).write(home / "r2")
    refused = prod_app.sidekick("rollback", prod_app.name, "r0", "--yes")
    assert refused.returncode == 2 and "no longer kept" in refused.stderr
    assert (home / "r2" / "journal.json").exists()
    # The same gate as every rollback: health, then the smoke checks.
    smoke = f"        smoke:\n          - {{url: 'http://127.0.0.1:{prod_app.port()}/health'}}\n"
    prod_app.config.write_text(prod_app.config.read_text() + smoke)
    result = prod_app.sidekick("rollback", prod_app.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "back on r1 (from r2's journal)" in result.stdout
    assert "1 smoke check(s) passed" in result.stdout
    assert prod_app.version() == "2"
    assert (prod_app.production / "VERSION").read_text() == "2\n"
    assert prod_app.web_image() == image_r1
    assert _releases(prod_app) == [("r2", "rolled-back"), ("r1", "live")]
