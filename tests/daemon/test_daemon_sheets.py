"""The daemon on a Google Sheet: the real gspread client against the local stand-in,
real tmux agents, and a Google outage in the middle of a run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.daemon import Daemon
from sidekick.health import heartbeat_path, read_heartbeat
from sidekick.state import StateStore
from tests.daemon.test_daemon_tmux import sidekick, tick_until
from tests.daemon.world import World, make_world
from tests.sheets_server import (
    VALUES_BATCH_UPDATE,
    VALUES_GET,
    SheetsStandIn,
    serving,
    write_service_account_key,
)

SHEET_ID = "1SidekickDaemonSheet"
TAB = "Priorities"
HEADER = ["Project", "Priority", "Status", "Agent", "Last Update", "Next Action", "Owner"]
WAIT = ["sh", "-c", "while [ ! -e go ]; do sleep 0.02; done"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SheetsStandIn]:
    with serving(monkeypatch) as standin:
        yield standin


@pytest.fixture
def world(tmp_path: Path, server: SheetsStandIn) -> Iterator[World]:
    key = write_service_account_key(tmp_path / "service-account.json", server)
    sheets = {
        "credentials_file": str(key),
        "spreadsheet_id": SHEET_ID,
        "worksheet": TAB,
        "api_base_url": server.base_url,
        "retry_deadline": 1.0,
    }
    made = make_world(tmp_path, ["mu"], WAIT, priority_source={"type": "sheets", "sheets": sheets})
    yield made
    made.kill_tmux()


def test_a_google_outage_keeps_the_daemon_working_on_the_last_list_and_nothing_is_lost(
    server: SheetsStandIn, world: World, tmp_path: Path
) -> None:
    sheet = server.add_sheet(
        SHEET_ID, TAB, [HEADER, ["mu", "1", "Pending", "", "", "ship it", "ana"]]
    )
    daemon = Daemon(world.config())
    tick_until(daemon, lambda: sheet.cell("mu", "Status") == "In Progress")
    assert sheet.cell("mu", "Agent") == "sidekick-mu" and world.sessions() == ["sidekick-mu"]

    server.fail(503, times=100_000, kinds=[VALUES_GET, VALUES_BATCH_UPDATE])
    (tmp_path / "projects" / "mu" / "go").touch()
    store = StateStore(world.state / "sidekick.db")
    tick_until(daemon, lambda: [r.state for r in store.runs("mu")] == ["finished"])
    daemon.run_once()
    beat = read_heartbeat(heartbeat_path(world.state))
    assert beat is not None and beat.last_reconcile_ok, "an outage is not a failed reconcile"
    assert any("priority source unreachable" in d and "503" in d for d in beat.degraded)
    check = sidekick(world, "check")
    assert check.returncode == 1 and "priority source unreachable" in check.stderr
    data = json.loads(sidekick(world, "status", "--json").stdout)
    assert data["waiting"] and data["waiting"][0].startswith("1 update(s) not yet written")
    assert sheet.cell("mu", "Status") == "In Progress", "Google never took the update"
    assert world.sessions() == [], "the ended agent was reaped all the same"

    server.recover()
    tick_until(daemon, lambda: sheet.cell("mu", "Status") == "Complete")
    assert sheet.cell("mu", "Owner") == "ana"
    assert [r.state for r in store.runs("mu")] == ["finished"], "not started again"
    daemon.run_once()
    beat = read_heartbeat(heartbeat_path(world.state))
    assert beat is not None and beat.degraded == []
    assert sidekick(world, "check").returncode == 0
