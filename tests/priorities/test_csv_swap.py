"""A person's save that lands in the instant of a write-back's swap stays, and the write is redone.

The write-back swaps its temp file in (renameat2 RENAME_EXCHANGE) and then
checks that what it swapped out is the file it read, untouched. These tests
land a real save, by rename or in place, exactly in that instant: just before
the swap (the moment no check can cover), and between the swap and the swap
back. Only the moment is arranged, by running the save from inside the
exchange call; the saves, the files, the lease and the kernel are real.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sidekick.errors import WriteConflict
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities import csv_file, writers
from sidekick.priorities.base import LastGoodSource
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.reconciler import Reconciler
from sidekick.runners.memory import InMemoryRunner
from sidekick.state import StateStore
from tests.daemon.world import make_world
from tests.polling import wait_until

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action\n"
BEFORE = HEADER + "a,1,Running,,,old note\n"


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "priorities.csv"
    path.write_text(BEFORE)
    return path


def save_by_rename(path: Path, note: str) -> None:
    person = path.with_name("person.tmp")
    person.write_text(path.read_text().replace("old note", note))
    os.replace(person, path)


@pytest.fixture
def before_swaps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], None]]]:
    """Actions run just before the 1st, 2nd, ... exchange of the write-back."""
    actions: list[Callable[[], None]] = []
    exchange = csv_file._exchange

    def exchange_after_action(a: Path, b: Path) -> bool:
        if actions:
            actions.pop(0)()
        return exchange(a, b)

    monkeypatch.setattr(csv_file, "_exchange", exchange_after_action)
    yield actions
    assert not actions, "the write-back swapped fewer times than the test arranged"


def rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def test_a_save_by_rename_just_before_the_swap_stays_and_the_write_is_redone_on_it(
    csv_path: Path, before_swaps: list[Callable[[], None]]
) -> None:
    before_swaps.append(lambda: save_by_rename(csv_path, "saved just before the swap"))
    result = CsvPrioritySource(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert rows(csv_path) == [["a", "1", "Complete", "", "", "saved just before the swap"]]
    assert result.attempts == 2


def test_the_newest_of_two_saves_around_the_swap_wins(
    csv_path: Path, before_swaps: list[Callable[[], None]]
) -> None:
    before_swaps.append(lambda: save_by_rename(csv_path, "first save"))
    # The second lands while the write-back's bytes are at the path, before it swaps back.
    before_swaps.append(lambda: save_by_rename(csv_path, "second save"))
    CsvPrioritySource(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert rows(csv_path) == [["a", "1", "Complete", "", "", "second save"]]


def breaking_lease_on(path: Path) -> bool:
    """Whether /proc/locks shows a lease on ``path`` being broken by an opener."""
    inode = f":{os.stat(path).st_ino} "
    return any("BREAKING" in line and inode in line for line in Path("/proc/locks").open())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux leases (/proc/locks)")
def test_a_save_in_place_opened_in_the_instant_of_the_swap_waits_and_lands_in_the_list(
    csv_path: Path, before_swaps: list[Callable[[], None]]
) -> None:
    saved = BEFORE.replace("old note", "saved in place").encode()
    opened = threading.Event()

    def save_in_place() -> None:
        # Resolves the path to the file the write-back read; opening it for writing waits.
        with csv_path.open("wb") as handle:
            opened.set()
            handle.write(saved)

    writer = threading.Thread(target=save_in_place)

    def start_writer() -> None:
        writer.start()
        wait_until(lambda: breaking_lease_on(csv_path), timeout=10, what="the writer to wait")
        assert not opened.is_set()

    before_swaps.append(start_writer)
    result = CsvPrioritySource(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    writer.join(10)
    assert opened.is_set()
    assert rows(csv_path) == [["a", "1", "Complete", "", "", "saved in place"]]
    assert result.attempts == 2


def test_a_read_cut_by_a_save_in_place_is_not_served_when_a_save_by_rename_follows_at_once(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_of_person = "".join(f"p{i},{i},Pending,,,note {i}\n" for i in range(40))
    whole = (HEADER + rows_of_person).encode()
    writer = csv_path.open("wb")
    writer.write(whole[: len(whole) // 2])
    writer.flush()
    is_being_written = writers.is_being_written

    def the_save_ends_and_another_follows(fd: int, path: Path) -> bool:
        # Between the read of the cut file and the look for writers: the writer ends
        # its save, and a save by rename puts a whole file at the path.
        if not writer.closed:
            writer.write(whole[len(whole) // 2 :])
            writer.close()
            save_by_rename(csv_path, "renamed")
        return is_being_written(fd, path)

    monkeypatch.setattr(csv_file, "is_being_written", the_save_ends_and_another_follows)
    snapshot = CsvPrioritySource(csv_path).load()
    assert writer.closed
    assert len(snapshot.projects) == 40
    assert not snapshot.findings


def test_a_list_deleted_during_a_write_back_is_a_write_conflict_and_the_update_waits(
    csv_path: Path,
) -> None:
    def delete_the_list(version: str) -> None:
        csv_path.unlink()

    source = CsvPrioritySource(csv_path, announce=delete_the_list)
    with pytest.raises(WriteConflict, match="cannot be written"):
        source.write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert not list(csv_path.parent.glob(".priorities.csv.sidekick-*.tmp"))
    # The person puts the list back; the same update then lands.
    csv_path.write_text(BEFORE)
    CsvPrioritySource(csv_path).write_back([RowUpdate("a", ProjectStatus.COMPLETE)])
    assert rows(csv_path) == [["a", "1", "Complete", "", "", "old note"]]


def test_the_reconciler_postpones_a_write_back_the_file_system_refuses(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, ["a"], ["true"])
    world.csv.write_text(BEFORE.replace("Running", "Pending"))
    store = StateStore(world.state / "sidekick.db")
    deleted: list[str] = []

    def delete_once(version: str) -> None:
        if not deleted:
            deleted.append(version)
            world.csv.rename(world.csv.with_name("aside.csv"))

    source = LastGoodSource(CsvPrioritySource(world.csv, announce=delete_once))
    reconciler = Reconciler(world.config(), source, InMemoryRunner(), store)
    try:
        first = reconciler.tick()
        assert "cannot be written" in first.postponed
        world.csv.with_name("aside.csv").rename(world.csv)
        reconciler.tick()
        assert rows(world.csv)[0][2] == "In Progress"
    finally:
        store.close()
