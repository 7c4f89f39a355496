"""A save made from the list as it read before a write-back keeps its edits and the daemon's cells.

``sed -i``, scripts and editors that do not look for changes on disk read the
whole file, change it and save it whole. Read just before a write-back and
saved just after, such a save puts the daemon's old cells back; the daemon's
are written again on top of it, while what the person changed stays.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sidekick.models import ProjectStatus, RowUpdate, agent_key
from sidekick.priorities.base import LastGoodSource
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.written_cells import DEFAULT_HOLD
from sidekick.reconciler import Reconciler
from sidekick.runners.memory import InMemoryRunner
from sidekick.state import StateStore
from tests.daemon.world import make_world

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "priorities.csv"
    path.write_text(HEADER + "a,1,In Progress,sidekick-a,started,old note\nb,2,Pending,,,b note\n")
    return path


def save_whole(path: Path, old: bytes, edit: tuple[bytes, bytes]) -> None:
    """Save, by rename, ``old`` (an earlier read) with one edit of the person's."""
    tmp = path.with_name("person.tmp")
    tmp.write_bytes(old.replace(*edit))
    os.replace(tmp, path)


def row(path: Path, name: str) -> list[str]:
    (found,) = [r.split(",") for r in path.read_text().splitlines() if r.startswith(name + ",")]
    return found


def test_a_save_from_a_read_before_the_write_back_gets_the_daemons_cells_again(
    csv_path: Path,
) -> None:
    source = CsvPrioritySource(csv_path)
    read_before = csv_path.read_bytes()
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE, "sidekick-a", "complete")])
    save_whole(csv_path, read_before, (b"b note", b"person's b note"))
    projects = source.load().by_name()
    assert projects["a"].status is ProjectStatus.COMPLETE
    assert projects["b"].next_action == "person's b note"
    assert row(csv_path, "a") == ["a", "1", "Complete", "sidekick-a", "complete", "old note"]
    assert row(csv_path, "b") == ["b", "2", "Pending", "", "", "person's b note"]


def test_sed_in_place_from_before_the_write_back_gets_the_daemons_cells_again(
    csv_path: Path,
) -> None:
    source = CsvPrioritySource(csv_path)
    read_before = csv_path.read_bytes()
    source.write_back([RowUpdate("a", ProjectStatus.FAILED, last_update="failed: exit 1")])
    # What sed -i does when it read before the write-back: its output replaces the list.
    edited = subprocess.run(
        ["sed", "s/old note/sed note/"], input=read_before, capture_output=True, check=True
    ).stdout
    save_whole(csv_path, edited, (b"", b""))
    assert source.load().by_name()["a"].status is ProjectStatus.FAILED
    assert row(csv_path, "a") == ["a", "1", "Failed", "sidekick-a", "failed: exit 1", "sed note"]


def test_a_daemon_cell_the_person_changes_on_purpose_stands(csv_path: Path) -> None:
    source = CsvPrioritySource(csv_path)
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE, "sidekick-a", "complete")])
    # The person re-queues the finished project: a value of their own, not the old one.
    save_whole(csv_path, csv_path.read_bytes(), (b"a,1,Complete", b"a,1,Pending"))
    assert source.load().by_name()["a"].status is ProjectStatus.PENDING
    assert row(csv_path, "a")[2] == "Pending"


def test_an_old_save_after_the_hold_is_the_persons(csv_path: Path) -> None:
    clock = Clock()
    source = CsvPrioritySource(csv_path, clock=clock)
    read_before = csv_path.read_bytes()
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE, "sidekick-a", "complete")])
    clock.now += DEFAULT_HOLD + 1
    save_whole(csv_path, read_before, (b"b note", b"late b note"))
    assert source.load().by_name()["a"].status is ProjectStatus.IN_PROGRESS
    assert csv_path.read_bytes() == read_before.replace(b"b note", b"late b note")


def test_a_finished_project_put_back_in_progress_by_an_old_save_is_not_run_again(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, ["a"], ["true"])
    world.csv.write_text(HEADER + "a,1,Pending,,,do it\n")
    store = StateStore(world.state / "sidekick.db")
    runner = InMemoryRunner()
    source = LastGoodSource(CsvPrioritySource(world.csv))
    reconciler = Reconciler(world.config(), source, runner, store)
    try:
        reconciler.tick()
        read_while_running = world.csv.read_bytes()
        runner.finish(agent_key("a"), 0)
        reconciler.tick()
        save_whole(world.csv, read_while_running, (b"do it", b"do it well"))
        for _ in range(3):
            reconciler.tick()
        assert row(world.csv, "a")[2] == "Complete"
        assert row(world.csv, "a")[5] == "do it well"
        assert runner.list_agents() == {}
        assert len(store.runs("a")) == 1
    finally:
        store.close()


def test_the_next_write_back_restores_the_cells_an_old_save_put_back(csv_path: Path) -> None:
    source = CsvPrioritySource(csv_path)
    read_before = csv_path.read_bytes()
    source.write_back([RowUpdate("a", ProjectStatus.COMPLETE, "sidekick-a", "complete")])
    save_whole(csv_path, read_before, (b"b note", b"person's b note"))
    # No load in between: the write-back of another row is the next thing the daemon does.
    result = source.write_back([RowUpdate("b", ProjectStatus.IN_PROGRESS, "sidekick-b", "started")])
    assert result.snapshot is not None
    assert result.snapshot.by_name()["a"].status is ProjectStatus.COMPLETE
    assert row(csv_path, "a") == ["a", "1", "Complete", "sidekick-a", "complete", "old note"]
    assert row(csv_path, "b") == [
        "b",
        "2",
        "In Progress",
        "sidekick-b",
        "started",
        "person's b note",
    ]
