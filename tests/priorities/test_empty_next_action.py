"""A Next Action that shows nothing is empty in the Google Sheet as in the CSV file: both
sources parse rows with the same code, so validate and the daemon judge them alike."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sidekick.config import load_config
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.sheets import SheetsPrioritySource
from sidekick.row_checks import unstartable_rows
from tests.priorities.test_sheets import HEADER, SHEET_ID, TAB, row
from tests.sheets_server import serving, write_service_account_key

ROWS = [
    HEADER,
    row("empty"),
    row("spaces", Next_Action="   "),
    row("zero width", Next_Action="\u200b\u200b"),
    row("ideographic", Next_Action="\u3000"),
    row("work", Next_Action="修复登录测试"),
    row("blocked", "2", "Blocked"),
]


def test_a_next_action_of_nothing_visible_is_a_finding_from_the_sheet_as_from_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "priorities.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(ROWS)
    with serving(monkeypatch) as server:
        server.add_sheet(SHEET_ID, TAB, ROWS)
        key = write_service_account_key(tmp_path / "service-account.json", server)
        sheet = SheetsPrioritySource(SHEET_ID, TAB, key, api_base_url=server.base_url).load()
    from_csv = CsvPrioritySource(path).load()
    assert sheet.projects == from_csv.projects
    assert [p.next_action for p in sheet.projects] == ["", "", "", "", "修复登录测试", ""]

    config = load_config(None, environ={})
    found = unstartable_rows(config, sheet.projects, "sheet")
    assert [(f.line, f.field, f.project) for f in found] == [
        (2, "Next Action", "empty"),
        (3, "Next Action", "spaces"),
        (4, "Next Action", "zero width"),
        (5, "Next Action", "ideographic"),
    ]
    assert str(found[0]).startswith("sheet:2 [Next Action]: empty")
