"""The Google Sheets source, with the real gspread and google-auth clients.

Google is replaced at the HTTP level by the stand-in in ``tests/sheets_server.py``
on 127.0.0.1; time is injected, so retries and pacing need no real sleeps.
"""

from __future__ import annotations

import csv
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sidekick.errors import PrioritySourceError, SourceUnreadable
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.sheets import (
    SheetsCredentialsError,
    SheetsPrioritySource,
    SheetsRequestRejected,
    SheetsUnavailable,
    retry_after_seconds,
)
from tests.outbound import recording
from tests.sheets_server import (
    METADATA,
    TOKEN,
    VALUES_BATCH_UPDATE,
    VALUES_GET,
    Sheet,
    SheetsStandIn,
    serving,
    write_service_account_key,
)

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-sidekick"
TAB = "Priorities"
HEADER = ["Project", "Priority", "Status", "Agent", "Last Update", "Next Action", "Notes"]


@dataclass
class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SheetsStandIn]:
    with serving(monkeypatch) as standin:
        yield standin


@pytest.fixture
def key_file(tmp_path: Path, server: SheetsStandIn) -> Path:
    return write_service_account_key(tmp_path / "service-account.json", server)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


SourceFactory = Callable[..., SheetsPrioritySource]


@pytest.fixture
def make_source(server: SheetsStandIn, key_file: Path, fake_time: FakeTime) -> SourceFactory:
    def make(**options: object) -> SheetsPrioritySource:
        settings: dict[str, object] = {
            "api_base_url": server.base_url,
            "clock": fake_time.clock,
            "sleep": fake_time.sleep,
            "random": lambda: 0.5,
        }
        settings.update(options)
        return SheetsPrioritySource(SHEET_ID, TAB, key_file, **settings)  # type: ignore[arg-type]

    return make


def row(project: str, priority: str = "1", status: str = "Pending", **cells: str) -> list[str]:
    out = [project, priority, status, "", "", "", ""]
    for name, value in cells.items():
        out[HEADER.index(name.replace("_", " "))] = value
    return out


def add_projects(server: SheetsStandIn, count: int) -> Sheet:
    rows = [HEADER] + [row(f"project-{i:03d}", str(i)) for i in range(count)]
    return server.add_sheet(SHEET_ID, TAB, rows)


# --- reading ----------------------------------------------------------------------


def test_load_reads_the_whole_list_with_one_request_and_sheet_row_numbers(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    server.add_sheet(SHEET_ID, TAB, [HEADER, row("alpha", "2"), [], row("beta", "1", "complete")])

    snapshot = make_source().load()

    assert [(p.name, p.priority, p.status, p.line) for p in snapshot.projects] == [
        ("alpha", 2, ProjectStatus.PENDING, 2),
        ("beta", 1, ProjectStatus.COMPLETE, 4),
    ]
    assert snapshot.findings == ()
    assert server.kinds() == {VALUES_GET: 1}


def test_loads_reuse_the_client_without_metadata_or_new_tokens(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    add_projects(server, 3)
    source = make_source()

    for _ in range(5):
        source.load()

    assert server.kinds() == {VALUES_GET: 5}
    assert server.count(TOKEN) == 1
    assert server.count(METADATA) == 0


def test_google_auths_background_boundary_lookup_stays_on_this_machine(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    """What we rely on: a load, and whatever google-auth does after it in the
    background (a version may or may not look up the account's access boundary),
    sends nothing off this machine. How google-auth gets there is its own."""
    add_projects(server, 1)

    with recording() as outbound:
        make_source().load()

    assert outbound.hosts, "the load reached the stand-in on 127.0.0.1"
    assert outbound.leaving_this_machine() == []


def test_columns_in_any_order_and_case_with_extra_columns(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    header = ["notes", "STATUS", "project", "Deadline", "priority", "gpu"]
    server.add_sheet(SHEET_ID, TAB, [header, ["x", "blocked", "gamma", "2026-03-01", "5", "Yes"]])

    (project,) = make_source().load().projects

    assert (project.name, project.priority, project.status) == ("gamma", 5, ProjectStatus.BLOCKED)
    assert (project.deadline.isoformat() if project.deadline else None, project.gpu) == (
        "2026-03-01",
        True,
    )


BAD_ROWS = [
    ["Project", "Priority", "Status", "Deadline", "GPU", "Model", "Notes"],
    ["good", "1", "Pending", "2026-01-31", "no", "default", "kept"],
    ["twice", "2", "Pending", "", "", "", ""],
    ["words", "high", "Pending", "", "", "", ""],
    ["odd status", "3", "Sleeping", "", "", "", ""],
    ["bad date", "4", "Pending", "31/01/2026", "", "", ""],
    ["bad gpu", "5", "Pending", "", "maybe", "", ""],
    ["twice", "6", "Complete", "", "", "", ""],
    ["bad model", "7", "Pending", "", "", "gpt-unknown", ""],
    ["", "8", "Pending", "", "", "", "no name"],
    ["also good", "9", "in progress", "", "YES", "", ""],
]


def test_bad_rows_are_reported_with_sheet_row_and_field_like_the_csv_file(
    server: SheetsStandIn, make_source: SourceFactory, tmp_path: Path
) -> None:
    server.add_sheet(SHEET_ID, TAB, BAD_ROWS)
    path = tmp_path / "priorities.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(BAD_ROWS)
    models = frozenset({"default"})

    snapshot = make_source(models=models).load()
    from_csv = CsvPrioritySource(path, models=models).load()

    assert [p.name for p in snapshot.projects] == ["good", "also good"]
    found = [(f.line, f.field) for f in snapshot.findings]
    assert found == [
        (3, "Project"),
        (4, "Priority"),
        (5, "Status"),
        (6, "Deadline"),
        (7, "GPU"),
        (8, "Project"),
        (9, "Model"),
        (10, "Project"),
    ]
    assert {f.source for f in snapshot.findings} == {f"sheet {SHEET_ID}/{TAB}"}
    assert str(snapshot.findings[1]).startswith(f"sheet {SHEET_ID}/{TAB}:4 [Priority]")
    same = [(f.line, f.field, f.problem) for f in from_csv.findings]
    assert [(f.line, f.field, f.problem) for f in snapshot.findings] == same
    assert snapshot.projects == from_csv.projects


def test_a_header_without_a_required_column_is_unreadable_and_names_the_sheet(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    server.add_sheet(SHEET_ID, TAB, [["Project", "Status"], ["alpha", "Pending"]])

    with pytest.raises(SourceUnreadable) as caught:
        make_source().load()

    assert caught.value.source == f"sheet {SHEET_ID}/{TAB}"
    assert "Priority" in str(caught.value)


def test_an_empty_sheet_is_unreadable(server: SheetsStandIn, make_source: SourceFactory) -> None:
    server.add_sheet(SHEET_ID, TAB, [])

    with pytest.raises(SourceUnreadable, match="header row required"):
        make_source().load()


def test_a_worksheet_title_with_quotes_and_spaces_is_addressed_correctly(
    server: SheetsStandIn, key_file: Path, fake_time: FakeTime
) -> None:
    title = "CTO's list / 2026"
    sheet = server.add_sheet(SHEET_ID, title, [HEADER, row("alpha")])
    source = SheetsPrioritySource(
        SHEET_ID, title, key_file, api_base_url=server.base_url, sleep=fake_time.sleep
    )

    assert [p.name for p in source.load().projects] == ["alpha"]
    source.write_back([RowUpdate("alpha", ProjectStatus.COMPLETE)])
    assert sheet.cell("alpha", "Status") == "Complete"


# --- writing ----------------------------------------------------------------------


def test_many_updates_go_out_in_one_batched_raw_update_after_one_read(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    sheet = add_projects(server, 60)
    source = make_source()
    source.load()
    server.reset_counts()
    updates = [
        RowUpdate(f"project-{i:03d}", ProjectStatus.IN_PROGRESS, f"sidekick-{i}", "2026-01-02")
        for i in range(0, 60, 2)
    ]

    result = source.write_back(updates)

    assert server.kinds() == {VALUES_GET: 1, VALUES_BATCH_UPDATE: 1}
    (body,) = server.update_bodies
    assert body["valueInputOption"] == "RAW"
    assert len(body["data"]) == 90
    assert {d["range"].split("!")[1][0] for d in body["data"]} == {"C", "D", "E"}
    assert len(result.written) == 30
    assert result.missing == ()
    assert sheet.cell("project-010", "Status") == "In Progress"
    assert sheet.cell("project-010", "Last Update") == "2026-01-02"
    assert sheet.cell("project-011", "Status") == "Pending"


def test_the_write_back_snapshot_is_what_the_next_load_reads(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    add_projects(server, 5)
    source = make_source()
    update = RowUpdate("project-002", ProjectStatus.FAILED, "", "exit 1; multi\nline")

    result = source.write_back([update])
    fresh = make_source().load()

    assert result.snapshot is not None
    assert result.snapshot == fresh
    assert result.version == fresh.version
    assert fresh.by_name()["project-002"].last_update == "exit 1; multi line"


def test_unchanged_cells_cost_only_the_read(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    server.add_sheet(SHEET_ID, TAB, [HEADER, row("alpha", status="Complete", Agent="a1")])

    result = make_source().write_back([RowUpdate("alpha", ProjectStatus.COMPLETE, "a1")])

    assert server.kinds() == {VALUES_GET: 1}
    assert result.written == ()


def test_rows_moved_inserted_and_deleted_after_the_load_still_get_the_right_cells(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    sheet = add_projects(server, 6)
    source = make_source()
    loaded = source.load()
    assert loaded.by_name()["project-004"].line == 6

    sheet.sort_by("Priority", reverse=True)
    sheet.insert(2, row("newcomer", "0"))
    sheet.move("project-004", 3)
    sheet.delete("project-001")
    before = sheet.rows()
    result = source.write_back(
        [
            RowUpdate("project-004", ProjectStatus.IN_PROGRESS, "sidekick-project-004", "t1"),
            RowUpdate("project-000", ProjectStatus.COMPLETE, None, "t2"),
            RowUpdate("project-001", ProjectStatus.BLOCKED),
        ]
    )

    assert result.written == ("project-004", "project-000")
    assert result.missing == ("project-001",)
    assert sheet.cell("project-004", "Status") == "In Progress"
    assert sheet.cell("project-004", "Agent") == "sidekick-project-004"
    assert sheet.cell("project-000", "Status") == "Complete"
    assert sheet.cell("project-000", "Last Update") == "t2"
    assert sheet.cell("newcomer", "Status") == "Pending"
    changed = [
        (r, c)
        for r, (old, new) in enumerate(zip(before, sheet.rows(), strict=True))
        for c, (a, b) in enumerate(zip(old, new, strict=True))
        if a != b
    ]
    assert {HEADER[c] for _, c in changed} <= {"Status", "Agent", "Last Update"}
    assert len({r for r, _ in changed}) == 2


def test_a_persons_edits_to_other_cells_are_kept_even_inside_the_write_window(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    sheet = add_projects(server, 4)
    source = make_source()
    source.load()
    sheet.set("project-001", "Next Action", "call the vendor")
    sheet.set("project-002", "Notes", "person's note")

    def person_types_between_read_and_update() -> None:
        sheet.set("project-001", "Notes", "typed during the write")
        sheet.set("project-003", "Priority", "0")

    server.before(VALUES_BATCH_UPDATE, person_types_between_read_and_update)
    source.write_back([RowUpdate("project-001", ProjectStatus.COMPLETE, "a", "now")])

    assert sheet.cell("project-001", "Status") == "Complete"
    assert sheet.cell("project-001", "Next Action") == "call the vendor"
    assert sheet.cell("project-001", "Notes") == "typed during the write"
    assert sheet.cell("project-002", "Notes") == "person's note"
    assert sheet.cell("project-003", "Priority") == "0"


def test_a_duplicated_project_is_reported_missing_and_neither_row_is_written(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    sheet = server.add_sheet(SHEET_ID, TAB, [HEADER, row("dup"), row("solo"), row("dup", "3")])

    result = make_source().write_back(
        [RowUpdate("dup", ProjectStatus.COMPLETE), RowUpdate("solo", ProjectStatus.COMPLETE)]
    )

    assert result.missing == ("dup",)
    assert result.written == ("solo",)
    assert [r[2] for r in sheet.rows()[1:]] == ["Pending", "Complete", "Pending"]


def test_absent_agent_and_last_update_columns_are_skipped_and_logged_once(
    server: SheetsStandIn, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sheet = server.add_sheet(
        SHEET_ID, TAB, [["Project", "Priority", "Status"], ["alpha", "1", "Pending"]]
    )
    source = make_source()

    for stamp in ("t1", "t2", "t3"):
        source.write_back([RowUpdate("alpha", ProjectStatus.IN_PROGRESS, "agent", stamp)])

    assert sheet.rows() == [["Project", "Priority", "Status"], ["alpha", "1", "In Progress"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "'Agent'" in w]) == 1
    assert len([w for w in warnings if "'Last Update'" in w]) == 1


# --- failures and retries --------------------------------------------------------------


def test_429_then_success_waits_as_long_as_retry_after_says(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 2)
    server.fail(429, times=2, retry_after=7, kinds=[VALUES_GET])

    snapshot = make_source().load()

    assert len(snapshot.projects) == 2
    assert fake_time.sleeps == [7.0, 7.0]
    assert [c.status for c in server.calls if c.kind == VALUES_GET] == [429, 429, 200]


def test_5xx_then_success_backs_off_exponentially_with_full_jitter(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 2)
    for status in (500, 503, 502):
        server.fail(status, kinds=[VALUES_GET])

    # A quota this high never makes the pacer wait, so every sleep is a backoff.
    make_source(random=lambda: 0.25, requests_per_minute=6000).load()

    assert fake_time.sleeps == [0.25, 0.5, 1.0]


def test_a_failed_batched_update_is_retried_and_applied_once(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    sheet = add_projects(server, 3)
    server.fail(503, kinds=[VALUES_BATCH_UPDATE])

    result = make_source().write_back([RowUpdate("project-001", ProjectStatus.COMPLETE)])

    assert result.written == ("project-001",)
    assert sheet.cell("project-001", "Status") == "Complete"
    assert [c.status for c in server.calls if c.kind == VALUES_BATCH_UPDATE] == [503, 200]
    assert server.kinds() == {VALUES_GET: 1, VALUES_BATCH_UPDATE: 2}


def test_past_the_deadline_a_clear_error_names_the_sheet_and_the_last_status(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 2)
    server.fail(429, times=1000, kinds=[VALUES_GET])
    started = fake_time.now

    with pytest.raises(SheetsUnavailable) as caught:
        make_source(retry_deadline=20.0, random=lambda: 1.0).load()

    error = caught.value
    assert isinstance(error, PrioritySourceError)
    assert (error.source, error.operation, error.last_status) == (
        f"sheet {SHEET_ID}/{TAB}",
        "load",
        429,
    )
    assert error.attempts == server.count(VALUES_GET) == 5
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert fake_time.now - started <= 20.0
    assert "HTTP 429" in str(error)
    assert f"sheet {SHEET_ID}/{TAB}" in str(error)


def test_connection_errors_are_retried_until_the_deadline(
    make_source: SourceFactory, fake_time: FakeTime
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(SheetsUnavailable) as caught:
        make_source(api_base_url=f"http://127.0.0.1:{closed_port}", retry_deadline=10.0).load()

    assert caught.value.last_status is None
    assert caught.value.attempts > 1
    assert "no HTTP answer" in str(caught.value)


def test_a_sheet_not_shared_with_the_account_fails_at_once_with_a_hint(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime, key_file: Path
) -> None:
    add_projects(server, 1)
    server.forbidden.add(SHEET_ID)

    with pytest.raises(SheetsRequestRejected) as caught:
        make_source().load()

    assert caught.value.status == 403
    assert str(key_file) in str(caught.value)
    assert server.count(VALUES_GET) == 1
    assert fake_time.sleeps == []


def test_an_unknown_worksheet_fails_at_once_naming_it(
    server: SheetsStandIn, key_file: Path, fake_time: FakeTime
) -> None:
    add_projects(server, 1)
    source = SheetsPrioritySource(
        SHEET_ID, "Sheet1", key_file, api_base_url=server.base_url, sleep=fake_time.sleep
    )

    with pytest.raises(SheetsRequestRejected) as caught:
        source.load()

    assert caught.value.status == 400
    assert "Sheet1" in str(caught.value)
    assert "worksheet" in str(caught.value)


def test_an_expired_token_is_refreshed_by_google_auth_without_our_retries(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 1)
    source = make_source()
    source.load()
    server.revoke_tokens()

    assert len(source.load().projects) == 1
    assert server.count(TOKEN) == 2
    assert [c.status for c in server.calls if c.kind == VALUES_GET] == [200, 401, 200]
    assert fake_time.sleeps == []


def test_a_key_google_does_not_know_is_a_credentials_error(
    server: SheetsStandIn, tmp_path: Path, fake_time: FakeTime
) -> None:
    add_projects(server, 1)
    with SheetsStandIn() as other:
        stranger = write_service_account_key(tmp_path / "stranger.json", other)
    text = stranger.read_text().replace(other.token_uri, server.token_uri)
    stranger.write_text(text)
    source = SheetsPrioritySource(
        SHEET_ID, TAB, stranger, api_base_url=server.base_url, sleep=fake_time.sleep
    )

    with pytest.raises(SheetsCredentialsError, match="token exchange failed"):
        source.load()
    assert server.sheets_requests() == 0


def test_a_failing_token_endpoint_is_retried_by_google_auth_alone(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 1)
    server.fail(503, times=10, kinds=[TOKEN])

    with pytest.raises(SheetsUnavailable, match="token exchange kept failing"):
        make_source().load()

    # google-auth's own three attempts (with its own real backoff), none added by us.
    assert server.count(TOKEN) == 3
    assert server.sheets_requests() == 0
    assert fake_time.sleeps == []


def test_a_missing_key_file_is_a_credentials_error_naming_it(
    server: SheetsStandIn, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.json"
    source = SheetsPrioritySource(SHEET_ID, TAB, missing, api_base_url=server.base_url)

    with pytest.raises(SheetsCredentialsError) as caught:
        source.load()

    assert caught.value.credentials_file == str(missing)
    assert str(missing) in str(caught.value)


def test_a_malformed_key_file_is_a_credentials_error(server: SheetsStandIn, tmp_path: Path) -> None:
    broken = tmp_path / "key.json"
    broken.write_text('{"type": "service_account", "client_email": "x@example.com"}')
    source = SheetsPrioritySource(SHEET_ID, TAB, broken, api_base_url=server.base_url)

    with pytest.raises(SheetsCredentialsError, match="not a usable service-account JSON key"):
        source.load()
    assert server.count() == 0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --- pacing ---------------------------------------------------------------------------


def test_requests_are_paced_so_no_minute_exceeds_the_quota(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 2)
    per_minute = 10
    source = make_source(requests_per_minute=per_minute)
    sent: list[float] = []

    server.observe(lambda kind: sent.append(fake_time.now) if kind == VALUES_GET else None)

    for _ in range(45):
        source.load()

    assert len(sent) == 45
    crowded = [i for i in range(len(sent) - per_minute) if sent[i + per_minute] - sent[i] < 60.0]
    assert crowded == []
    # No more waiting than the quota needs: after the burst, one request per 60/(10 - 2) s.
    assert sent[-1] - sent[0] == pytest.approx((45 - 2) * 60 / 8, rel=1e-6)


def test_pacing_counts_retries_too(
    server: SheetsStandIn, make_source: SourceFactory, fake_time: FakeTime
) -> None:
    add_projects(server, 2)
    server.fail(500, times=6, kinds=[VALUES_GET])
    sent: list[float] = []
    server.observe(lambda kind: sent.append(fake_time.now) if kind == VALUES_GET else None)

    make_source(requests_per_minute=4, random=lambda: 0.0, retry_deadline=600.0).load()

    assert len(sent) == 7
    assert all(sent[i + 4] - sent[i] >= 60.0 for i in range(len(sent) - 4))


def test_a_write_back_of_a_reconcile_costs_two_requests_and_a_load_one(
    server: SheetsStandIn, make_source: SourceFactory
) -> None:
    add_projects(server, 20)
    source = make_source()

    source.load()
    assert server.sheets_requests() == 1
    server.reset_counts()
    source.write_back([RowUpdate(f"project-{i:03d}", ProjectStatus.COMPLETE) for i in range(10)])
    assert server.sheets_requests() == 2
