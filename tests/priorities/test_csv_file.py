from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from sidekick.errors import SourceLocked, SourceUnreadable
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities import csv_file
from sidekick.priorities.base import LastGoodSource, content_version
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.csv_table import Record, tokenize

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return tmp_path / "priorities.csv"


def test_valid_rows_become_projects_in_list_order(csv_path: Path) -> None:
    write(
        csv_path,
        HEADER
        + "alpha,2,pending,,,Write tests,2026-12-01,yes,default\n"
        + "beta,1,In Progress,sidekick-beta,2026-11-20T10:00:00Z,,,no,\n",
    )
    snapshot = CsvPrioritySource(csv_path).load()
    alpha, beta = snapshot.projects
    assert (alpha.name, alpha.priority, alpha.status) == ("alpha", 2, ProjectStatus.PENDING)
    assert alpha.deadline == date(2026, 12, 1) and alpha.gpu and alpha.model == "default"
    assert alpha.next_action == "Write tests" and alpha.line == 2
    assert beta.status is ProjectStatus.IN_PROGRESS and beta.agent == "sidekick-beta"
    assert snapshot.findings == ()
    assert snapshot.version == content_version(csv_path.read_bytes())


def test_columns_in_any_order_with_extra_columns(csv_path: Path) -> None:
    write(csv_path, "Notes,status,PROJECT,priority\nkeep me,Blocked,gamma,5\n")
    (gamma,) = CsvPrioritySource(csv_path).load().projects
    assert (gamma.name, gamma.priority, gamma.status) == ("gamma", 5, ProjectStatus.BLOCKED)


def test_bad_rows_are_reported_with_line_and_field_and_skipped(csv_path: Path) -> None:
    write(
        csv_path,
        HEADER
        + "good,1,Pending,,,,,,\n"
        + "dup,2,Pending,,,,,,\n"
        + "nonnumeric,high,Pending,,,,,,\n"
        + "badstatus,3,Sleeping,,,,,,\n"
        + "baddate,4,Pending,,,,31/12/2026,,\n"
        + "dup,5,Pending,,,,,,\n"
        + "badgpu,6,Pending,,,,,maybe,\n"
        + "also-good,7,Complete,,,,,,\n",
    )
    snapshot = CsvPrioritySource(csv_path).load()
    assert [p.name for p in snapshot.projects] == ["good", "also-good"]
    found = {(f.line, f.field) for f in snapshot.findings}
    assert found == {
        (3, "Project"),
        (4, "Priority"),
        (5, "Status"),
        (6, "Deadline"),
        (7, "Project"),
        (8, "GPU"),
    }
    assert all(f.source == str(csv_path) for f in snapshot.findings)
    text = "\n".join(str(f) for f in snapshot.findings)
    assert f"{csv_path}:4 [Priority]: not a whole number: 'high'" in text
    assert "also on line 7" in text


def test_unknown_model_is_a_finding_when_profiles_are_known(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,gpt\nb,2,Pending,,,,,,default\n")
    snapshot = CsvPrioritySource(csv_path, models=frozenset({"default"})).load()
    assert [p.name for p in snapshot.projects] == ["b"]
    assert snapshot.findings[0].field == "Model" and snapshot.findings[0].line == 2


def test_missing_required_column_makes_the_file_unreadable(csv_path: Path) -> None:
    write(csv_path, "Project,Status\na,Pending\n")
    with pytest.raises(SourceUnreadable, match="Priority"):
        CsvPrioritySource(csv_path).load()


def test_unparseable_file_keeps_the_last_good_list(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    source = LastGoodSource(CsvPrioritySource(csv_path))
    first = source.load()
    write(csv_path, "")
    again = source.load()
    assert again.projects == first.projects
    assert "header row required" in str(again.findings[-1])


def test_the_last_good_list_is_the_one_written_not_an_older_load(csv_path: Path) -> None:
    # Serving the list from before the write-back would show a finished project
    # Pending again, and the daemon would start it a second time.
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    source = LastGoodSource(CsvPrioritySource(csv_path))
    source.load()
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE, "sidekick-a", "done")])
    write(csv_path, "")
    (project,) = source.load().projects
    assert project.status is ProjectStatus.COMPLETE


def test_missing_file_is_unreadable_with_its_path(csv_path: Path) -> None:
    with pytest.raises(SourceUnreadable, match=str(csv_path)):
        CsvPrioritySource(csv_path).load()


def test_excel_style_file_with_bom_crlf_and_quoted_fields(csv_path: Path) -> None:
    text = (
        "\ufeff"
        + HEADER
        + 'alpha,1,Pending,,,"Fix ""login"", then\ndeploy",,,\n'
        + "beta,2,Pending,,,,,,\n"
    )
    write(csv_path, text, newline="\r\n")
    alpha, beta = CsvPrioritySource(csv_path).load().projects
    assert alpha.next_action == 'Fix "login", then\r\ndeploy'
    assert beta.line == 4, "line numbers count the newline inside the quoted field"


def test_write_back_changes_only_the_daemons_cells(csv_path: Path) -> None:
    original = (
        "\ufeffProject,Priority,Owner,Status,Agent,Last Update,Next Action\r\n"
        '"alpha",1,ann,"Pending",,,"Say ""hi"", twice"\r\n'
        "beta,2,bob,Pending,,,Nothing\r\n"
    )
    csv_path.write_bytes(original.encode())
    update = RowUpdate("alpha", ProjectStatus.IN_PROGRESS, "sidekick-alpha", "2026-11-23T12:00Z")
    result = CsvPrioritySource(csv_path).write_back([update])
    expected = original.replace(
        '"Pending",,,', '"In Progress",sidekick-alpha,2026-11-23T12:00Z,', 1
    )
    assert csv_path.read_bytes() == expected.encode()
    assert result.written == ("alpha",) and result.missing == ()
    assert result.snapshot is not None
    assert result.snapshot.by_name()["alpha"].status is ProjectStatus.IN_PROGRESS
    assert result.version == content_version(expected.encode())


def test_write_back_quotes_values_that_need_it(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    CsvPrioritySource(csv_path).write_back([RowUpdate("a", agent='odd, "name"')])
    assert CsvPrioritySource(csv_path).load().projects[0].agent == 'odd, "name"'
    assert '"odd, ""name"""' in csv_path.read_text()


def test_write_back_pads_a_short_row(csv_path: Path) -> None:
    write(csv_path, "Project,Priority,Status,Agent,Last Update\na,1\nb,2,Pending\n")
    CsvPrioritySource(csv_path).write_back(
        [RowUpdate("a", ProjectStatus.COMPLETE, last_update="t1")]
    )
    assert csv_path.read_text() == (
        "Project,Priority,Status,Agent,Last Update\na,1,Complete,,t1\nb,2,Pending\n"
    )


def test_write_back_reports_rows_that_are_gone_or_ambiguous(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\nb,2,Pending,,,,,,\nb,3,Pending,,,,,,\n")
    before = csv_path.read_bytes()
    result = CsvPrioritySource(csv_path).write_back(
        [RowUpdate("gone", ProjectStatus.FAILED), RowUpdate("b", ProjectStatus.FAILED)]
    )
    assert result.missing == ("gone", "b") and result.written == ()
    assert csv_path.read_bytes() == before


def test_many_updates_become_one_replace(csv_path: Path) -> None:
    rows = "".join(f"p{i},{i},Pending,,,,,,\n" for i in range(50))
    write(csv_path, HEADER + rows)
    inode = csv_path.stat().st_ino
    updates = [RowUpdate(f"p{i}", ProjectStatus.COMPLETE) for i in range(50)]
    result = CsvPrioritySource(csv_path).write_back(updates)
    assert result.attempts == 1 and len(result.written) == 50
    assert csv_path.stat().st_ino != inode
    assert {p.status for p in CsvPrioritySource(csv_path).load().projects} == {
        ProjectStatus.COMPLETE
    }
    leftovers = [p.name for p in csv_path.parent.iterdir() if p.name != csv_path.name]
    assert leftovers == []


def test_write_back_keeps_mode_and_owner(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    os.chmod(csv_path, 0o640)
    if os.geteuid() == 0:
        os.chown(csv_path, 4321, 4321)
    CsvPrioritySource(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    stat = csv_path.stat()
    assert stat.st_mode & 0o777 == 0o640
    if os.geteuid() == 0:
        assert (stat.st_uid, stat.st_gid) == (4321, 4321)


def test_own_write_is_announced_before_it_lands(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    announced: list[tuple[str, bytes]] = []
    source = CsvPrioritySource(
        csv_path, announce=lambda v: announced.append((v, csv_path.read_bytes()))
    )
    result = source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    ((version, content_then),) = announced
    assert version == result.version == content_version(csv_path.read_bytes())
    assert b"Complete" not in content_then


class PersonSavesDuringWrite(CsvPrioritySource):
    """A person's editor saves (by rename) just after the daemon has read the file."""

    saves_left = 2

    def _write_temp(self, data: bytes) -> Path:
        tmp = super()._write_temp(data)
        if self.saves_left:
            self.saves_left -= 1
            text = self.path.read_text()
            person = self.path.with_name("person.tmp")
            person.write_text(text.replace("old note", f"person edit {self.saves_left}"))
            os.replace(person, self.path)
        return tmp


def test_a_save_during_write_back_is_kept_and_the_write_retried(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,old note,,,\n")
    result = PersonSavesDuringWrite(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    (project,) = CsvPrioritySource(csv_path).load().projects
    assert project.next_action == "person edit 1"
    assert project.status is ProjectStatus.COMPLETE
    assert result.attempts == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


def test_write_back_waits_while_an_editor_holds_the_file(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    lock = csv_path.with_name(f".~lock.{csv_path.name}#")
    lock.write_text("person,host,1234;")
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.sleeps == 3:
            lock.unlink()
            assert "Pending" in csv_path.read_text(), "nothing is written while locked"

    source = CsvPrioritySource(csv_path, clock=clock, sleep=sleep)
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert clock.sleeps == 3
    assert "Complete" in csv_path.read_text()


def test_write_back_gives_up_while_the_lock_stays(csv_path: Path) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\n")
    csv_path.with_name(f".~lock.{csv_path.name}#").write_text("x")
    clock = FakeClock()
    source = CsvPrioritySource(csv_path, lock_wait=5, clock=clock, sleep=clock.sleep)
    with pytest.raises(SourceLocked, match="lock"):
        source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert "Pending" in csv_path.read_text()


def test_invalid_utf8_bytes_survive_a_write_back(csv_path: Path) -> None:
    raw = HEADER.encode() + b"caf\xc3\xa9,1,Pending,,,,,,\nb,2,Pending,,,na\xefve,,,\n"
    csv_path.write_bytes(raw)
    snapshot = CsvPrioritySource(csv_path).load()
    assert [p.name for p in snapshot.projects] == ["café"]
    assert snapshot.findings[0].line == 3 and "UTF-8" in snapshot.findings[0].problem
    CsvPrioritySource(csv_path).write_back([RowUpdate("café", ProjectStatus.COMPLETE)])
    assert csv_path.read_bytes() == raw.replace(b",1,Pending", b",1,Complete")


def test_unterminated_quote_skips_only_its_row(csv_path: Path) -> None:
    write(csv_path, HEADER + 'a,1,Pending,,,"never closed\n' + "b,2,Pending,,,,,,\n")
    snapshot = CsvPrioritySource(csv_path).load()
    assert [p.name for p in snapshot.projects] == ["b"]
    assert snapshot.findings[0].line == 2 and "never closed" in snapshot.findings[0].problem


def test_a_write_back_after_a_load_does_not_tokenize_the_same_bytes_again(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(csv_path, HEADER + "a,1,Pending,,,,,,\nb,2,Pending,,,,,,\n")
    source = CsvPrioritySource(csv_path)
    source.load()
    calls: list[str] = []

    def counting(text: str, delimiter: str = ",") -> list[Record]:
        calls.append(text)
        return tokenize(text, delimiter)

    monkeypatch.setattr(csv_file, "tokenize", counting)
    source.write_back([RowUpdate("a", ProjectStatus.IN_PROGRESS, "sidekick-a", "started")])
    assert calls == []
    # A person's save of the same length: new bytes, so they are read afresh.
    write(csv_path, HEADER + "a,1,In Progress,sidekick-a,started,,,,\nb,3,Pending,,,,,,\n")
    source.write_back([RowUpdate("b", ProjectStatus.COMPLETE, "sidekick-b", "done")])
    assert len(calls) == 1
    rows = source.load().by_name()
    assert rows["b"].priority == 3 and rows["b"].status is ProjectStatus.COMPLETE
    assert rows["a"].status is ProjectStatus.IN_PROGRESS
