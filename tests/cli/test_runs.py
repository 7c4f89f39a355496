"""``sidekick runs`` shows a table of what README promises, and names a project it cannot find."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.models import AgentRun
from sidekick.state import RunEnd, StateStore
from tests.cli.invoke import sidekick

STARTED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def record(config: Path, run_id: str, end: RunEnd | None) -> None:
    store = StateStore(config.parent / "state" / "sidekick.db")
    try:
        store.begin_run(AgentRun(run_id, "Shop", "sidekick-Shop", ("claude",), STARTED))
        if end is not None:
            store.end_run(run_id, end)
    finally:
        store.close()


def runs(config: Path, project: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return sidekick(capsys, config, "runs", project)


def test_runs_are_a_table_with_session_turns_tokens_and_cost(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = RunEnd(
        "exited",
        STARTED,
        0,
        "complete (3 turns, $0.0420)",
        "complete",
        "sess-7f3a",
        3,
        1200,
        345,
        0.042,
    )
    record(config, "r-ended", ended)
    record(config, "r-open", None)
    code, out, err = runs(config, "Shop", capsys)
    assert (code, err) == (0, "")
    header, *lines = out.splitlines()
    assert header.split() == [
        "STARTED",
        "RUN",
        "STATE",
        "EXIT",
        "OUTCOME",
        "TURNS",
        "TOKENS",
        "IN/OUT",
        "COST",
        "SESSION",
        "REASON",
    ]
    by_run = {line.split()[1]: line.split() for line in lines}
    assert by_run["r-ended"][2:9] == [
        "exited",
        "0",
        "complete",
        "3",
        "1200/345",
        "$0.0420",
        "sess-7f3a",
    ]
    assert " ".join(by_run["r-ended"][9:]) == "complete (3 turns, $0.0420)"
    # A run still open has no figures yet: a dash, never "None".
    assert by_run["r-open"][2:8] == ["starting", "-", "-", "-", "-", "-"]
    assert "None" not in out
    # Each value starts under its header.
    ended_line = next(line for line in lines if "r-ended" in line)
    for column, value in [("RUN", "r-ended"), ("TURNS", "3"), ("COST", "$0.0420")]:
        assert ended_line.index(f" {value} ") + 1 == header.index(column)
    assert ended_line.index("sess-7f3a") == header.index("SESSION")


def test_runs_of_an_unknown_project_fail_and_say_it_is_not_in_the_list(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = runs(config, "nosuch", capsys)
    assert (code, out) == (1, "")
    listed = config.parent / "priorities.csv"
    assert err == (
        f"sidekick: no runs recorded for 'nosuch': it is not a project of the list ({listed})\n"
    )


def test_a_listed_project_without_runs_has_none_yet(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runs(config, "Shop", capsys) == (0, "no runs recorded for 'Shop' yet\n", "")


def test_runs_json_keeps_every_field(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record(config, "r-1", RunEnd("exited", STARTED, 0, "ok", "complete", "s-1", 2, 10, 5, 0.5))
    assert main(["runs", "Shop", "--json", "--config", str(config)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["session_id"], row["turns"], row["input_tokens"], row["output_tokens"]) == (
        "s-1",
        2,
        10,
        5,
    )
