"""Every CSV that Excel, LibreOffice and Google Sheets write is read, and written back in kind."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sidekick.errors import SourceLocked, SourceUnreadable
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities.base import LastGoodSource
from sidekick.priorities.csv_file import CsvPrioritySource

COLUMNS = ["Project", "Priority", "Status", "Agent", "Last Update", "Next Action"]


@dataclass(frozen=True)
class Flavour:
    """How one program on one locale writes a CSV."""

    label: str
    encoding: str
    delimiter: str
    eol: str = "\r\n"
    bom: bytes = b""
    sep_line: bool = False

    def encode(self, rows: list[list[str]]) -> bytes:
        lines = [self.delimiter.join(row) for row in rows]
        if self.sep_line:
            lines.insert(0, f"sep={self.delimiter}")
        return self.bom + "".join(line + self.eol for line in lines).encode(self.encoding)


FLAVOURS = [
    Flavour("Windows Excel, CSV (comma delimited)", "cp1252", ","),
    Flavour("European Windows Excel, CSV", "cp1252", ";"),
    Flavour("Excel, CSV UTF-8", "utf-8", ",", bom=b"\xef\xbb\xbf"),
    Flavour("European Excel, CSV UTF-8", "utf-8", ";", bom=b"\xef\xbb\xbf"),
    Flavour("Excel, Unicode text", "utf-16-le", "\t", bom=b"\xff\xfe"),
    Flavour("UTF-16 big-endian text", "utf-16-be", "\t", bom=b"\xfe\xff"),
    Flavour("LibreOffice, semicolons", "utf-8", ";", eol="\n"),
    Flavour("LibreOffice, tabs", "utf-8", "\t", eol="\n"),
    Flavour("Google Sheets, CSV", "utf-8", ",", eol="\r\n"),
    Flavour("Mac Excel, CSV", "utf-8", ",", eol="\r"),
    Flavour("Excel with a sep= line", "cp1252", ";", sep_line=True),
]


def rows(status: str = "Pending", agent: str = "") -> list[list[str]]:
    return [
        COLUMNS,
        ["Café menu", "1", status, agent, "", "Add the crème brûlée"],
        ["Zürich office", "2", "Pending", "", "", "Book rooms for 3"],
    ]


@pytest.mark.parametrize("flavour", FLAVOURS, ids=[f.label for f in FLAVOURS])
def test_each_spreadsheets_csv_is_read_as_the_person_typed_it(
    tmp_path: Path, flavour: Flavour
) -> None:
    path = tmp_path / "priorities.csv"
    path.write_bytes(flavour.encode(rows()))
    snapshot = CsvPrioritySource(path).load()
    assert snapshot.findings == ()
    cafe = snapshot.by_name()["Café menu"]
    assert cafe.next_action == "Add the crème brûlée" and cafe.priority == 1
    assert snapshot.by_name()["Zürich office"].next_action == "Book rooms for 3"


@pytest.mark.parametrize("flavour", FLAVOURS, ids=[f.label for f in FLAVOURS])
def test_write_back_keeps_the_files_encoding_delimiter_bom_and_line_endings(
    tmp_path: Path, flavour: Flavour
) -> None:
    path = tmp_path / "priorities.csv"
    path.write_bytes(flavour.encode(rows()))
    update = RowUpdate("Café menu", ProjectStatus.IN_PROGRESS, "sidekick-café-menu")
    result = CsvPrioritySource(path).write_back([update])
    assert result.written == ("Café menu",)
    assert path.read_bytes() == flavour.encode(rows("In Progress", "sidekick-café-menu"))


def test_a_cell_a_cp1252_file_cannot_hold_is_written_as_near_as_it_can(tmp_path: Path) -> None:
    flavour = FLAVOURS[0]
    path = tmp_path / "priorities.csv"
    path.write_bytes(flavour.encode(rows()))
    source = CsvPrioritySource(path)
    source.write_back([RowUpdate("Café menu", last_update="done ✓ · $0.01 → ok")])
    assert source.load().by_name()["Café menu"].last_update == "done ? · $0.01 ? ok"
    assert path.read_bytes().decode("cp1252").count("Café menu") == 1


def test_a_semicolon_list_is_no_longer_refused_for_lacking_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("Project;Priority;Status\nCafé menu;1;Pending\n", encoding="cp1252")
    assert [p.name for p in CsvPrioritySource(path).load().projects] == ["Café menu"]


def test_a_header_without_the_columns_says_what_to_change(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("Name|Rank|State\nCafé menu|1|Pending\n")
    with pytest.raises(SourceUnreadable) as caught:
        CsvPrioritySource(path).load()
    problem = caught.value.problem
    assert "Priority" in problem and "commas" in problem and "semicolons or tabs" in problem


@pytest.mark.parametrize(
    ("encoding", "bad"),
    [
        ("utf-8", b"Caf\xe9 menu"),  # a cp1252 row pasted into a UTF-8 file
        ("cp1252", b"Caf\x81 menu"),  # a byte Windows-1252 has no character for
    ],
)
def test_undecodable_text_is_a_finding_on_its_row_and_never_served(
    tmp_path: Path, encoding: str, bad: bytes
) -> None:
    good = "Zürich office" if encoding == "utf-8" else "Straße"
    raw = (
        b"Project,Priority,Status\r\n"
        + good.encode(encoding)
        + b",1,Pending\r\n"
        + bad
        + b",2,Pending\r\nLast,3,Pending\r\n"
    )
    path = tmp_path / "priorities.csv"
    path.write_bytes(raw)
    snapshot = CsvPrioritySource(path).load()
    assert [p.name for p in snapshot.projects] == [good, "Last"]
    (finding,) = snapshot.findings
    assert finding.line == 3 and "not" in finding.problem and "row skipped" in finding.problem
    for project in snapshot.projects:
        project.name.encode("utf-8")  # strict: no lone surrogate reaches SQLite or tmux
    finding.project.encode("utf-8")
    CsvPrioritySource(path).write_back([RowUpdate("Last", ProjectStatus.COMPLETE)])
    assert path.read_bytes() == raw.replace(b"Last,3,Pending", b"Last,3,Complete")


def test_a_utf16_file_cut_short_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_bytes(FLAVOURS[4].encode(rows())[:-1])
    with pytest.raises(SourceUnreadable, match="UTF-16"):
        CsvPrioritySource(path).load()


# --- rows whose shape does not match the header ---------------------------------------


@pytest.mark.parametrize(
    ("header", "row", "fields", "width"),
    [
        # Next Action last: the input, an unquoted comma in the prompt.
        (
            "Project,Priority,Status,Agent,Last Update,Next Action",
            "Login,1,Pending,,,fix the flaky login test, then deploy",
            7,
            6,
        ),
        # The usual order: the comma used to be blamed on Deadline.
        (
            "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model",
            "Login,1,Pending,,,fix login, then deploy,2026-12-01,no,",
            10,
            9,
        ),
        ("Project;Priority;Status;Next Action", "Login;1;Pending;fix it; then deploy", 5, 4),
    ],
)
def test_a_row_with_more_fields_than_its_header_is_a_finding_on_its_line(
    tmp_path: Path, header: str, row: str, fields: int, width: int
) -> None:
    sep = ";" if ";" in header else ","
    ok = sep.join(["Other", "2", "Pending"] + [""] * (width - 3))
    path = tmp_path / "priorities.csv"
    path.write_text(f"{header}\n{row}\n{ok}\n")
    snapshot = CsvPrioritySource(path).load()
    assert [p.name for p in snapshot.projects] == ["Other"]
    (finding,) = snapshot.findings
    assert finding.line == 2 and finding.field == ""
    assert f"{fields} fields but the header has {width}" in finding.problem
    assert CsvPrioritySource(path).write_back([RowUpdate("Login", ProjectStatus.FAILED)]).missing


# --- symlinked lists ----------------------------------------------------------------


def test_a_symlinked_list_is_written_through_the_link(tmp_path: Path) -> None:
    synced = tmp_path / "Dropbox"
    synced.mkdir()
    target = synced / "priorities.csv"
    target.write_text("Project,Priority,Status\na,1,Pending\n")
    link = tmp_path / "priorities.csv"
    link.symlink_to(target)
    CsvPrioritySource(link).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "Project,Priority,Status\na,1,Complete\n"
    assert not [p for p in synced.iterdir() if p.name.endswith(".tmp")]
    target.write_text("Project,Priority,Status\na,1,Complete\nb,2,Pending\n")
    assert [p.name for p in CsvPrioritySource(link).load().projects] == ["a", "b"]


# --- saves in place, and litter ---------------------------------------------------------

HALF_WRITER = """
import sys
with open(sys.argv[1], "w") as f:
    f.write("Project,Priority,Status\\na,1,Pending\\n")
    f.flush()
    print("half", flush=True)
    sys.stdin.readline()
    f.write("b,2,Pending\\n")
"""


def start_half_writer(path: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline() == "half\n"
    return writer


def finish(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None
    writer.stdin.write("go\n")
    writer.stdin.close()
    assert writer.wait(10) == 0


def test_a_list_caught_mid_save_is_not_read_half_written(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("Project,Priority,Status\nold,1,Pending\n")
    source = LastGoodSource(CsvPrioritySource(path, lock_wait=0.2))
    assert [p.name for p in source.load().projects] == ["old"]
    writer = start_half_writer(path)
    try:
        # The last list is served, quietly: no finding, no half list.
        assert [p.name for p in source.load().projects] == ["old"]
        assert source.load().findings == ()
    finally:
        finish(writer)
    assert [p.name for p in source.load().projects] == ["a", "b"]


def test_a_write_back_waits_for_a_save_in_place_and_lands_on_top_of_it(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("Project,Priority,Status\na,1,Pending\n")
    source = CsvPrioritySource(path, lock_wait=0.2)
    writer = start_half_writer(path)
    try:
        with pytest.raises(SourceLocked, match="saving"):
            source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    finally:
        finish(writer)
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert path.read_text() == "Project,Priority,Status\na,1,Complete\nb,2,Pending\n"


def test_an_empty_list_postpones_a_write_back_instead_of_failing_the_reconcile(
    tmp_path: Path,
) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("")
    with pytest.raises(SourceLocked, match="header row required"):
        CsvPrioritySource(path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])


def test_a_save_that_lands_in_the_replaced_file_is_put_back(tmp_path: Path) -> None:
    # A second name for the file (a sync tool's hard link, a writer in another
    # container that /proc cannot show) writes into the file a write-back replaced.
    path = tmp_path / "priorities.csv"
    path.write_text("Project,Priority,Status,Next Action\na,1,Pending,\nb,2,Pending,\n")
    other = tmp_path / "other-name.csv"
    os.link(path, other)
    source = CsvPrioritySource(path)
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    other.write_text("Project,Priority,Status,Next Action\na,1,Pending,\nb,2,Pending,late edit\n")
    by_name = source.load().by_name()
    assert by_name["b"].next_action == "late edit"
    assert by_name["a"].status is ProjectStatus.COMPLETE
    assert "late edit" in path.read_text() and "Complete" in path.read_text()


def test_temp_files_of_a_killed_write_back_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    path.write_text("Project,Priority,Status\na,1,Pending\n")
    stale = tmp_path / ".priorities.csv.sidekick-k1ll3d.tmp"
    stale.write_text("half a write-back")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    live = tmp_path / ".priorities.csv.sidekick-inflight.tmp"
    live.write_text("another write-back, this very moment")
    CsvPrioritySource(path).load()
    assert not stale.exists() and live.exists()
