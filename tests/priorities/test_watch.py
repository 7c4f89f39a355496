"""The file watcher against real files, real save patterns and real tools (sed, vim, touch).

A "no event" claim is proved without fixed sleeps: after the action that must
not be reported, a sentinel save is made and awaited; since the watcher
reports in order, a list holding only the sentinel shows nothing came before
it. ``checks`` (how many times the content was hashed) shows whether the
watcher looked at all.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.events import (
    DirDeletedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
)

from sidekick.priorities.base import content_version
from sidekick.priorities.watch import (
    IN_CLOSE_WRITE,
    IN_DELETE_SELF,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    FileWatcher,
    InotifyDirectory,
    InotifyUnavailable,
    ObserverFactory,
    SourcePoller,
    UnknownWatchMode,
    WatchdogDirectory,
    editor_lock_files,
    platform_observer_factory,
    translate_watchdog_event,
)
from tests.needs import missing

# In inotify mode the stat safety net is pushed out of reach, so only inotify can explain an event.
NO_SAFETY_NET = 3600.0
FAST_POLL = 0.05
DEADLINE = 5.0


def csv_text(priority: int, project: str = "Alpha") -> str:
    return f"Project,Priority,Status\n{project},{priority},Pending\nBeta,7,Blocked\n"


def version_of(text: str) -> str:
    return content_version(text.encode())


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Recorder:
    """An on_change callback that remembers what it was told and lets a test await it."""

    def __init__(self) -> None:
        self.versions: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, version: str) -> None:
        with self._changed:
            self.versions.append(version)
            self._changed.notify_all()

    def wait_for(self, version: str, timeout: float = DEADLINE) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: version in self.versions, timeout)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "priorities.csv"
    path.write_text(csv_text(1))
    return path


@pytest.fixture
def watchers() -> Iterator[list[FileWatcher | SourcePoller]]:
    started: list[FileWatcher | SourcePoller] = []
    yield started
    for watcher in started:
        watcher.stop()


@pytest.fixture
def start(
    watchers: list[FileWatcher | SourcePoller],
) -> Callable[..., tuple[FileWatcher, Recorder]]:
    def start_watcher(
        path: Path,
        mode: str = "inotify",
        poll_interval: float | None = None,
        observer_factory: ObserverFactory | None = None,
        debounce: float = 0.05,
    ) -> tuple[FileWatcher, Recorder]:
        if poll_interval is None:
            poll_interval = FAST_POLL if mode == "poll" else NO_SAFETY_NET
        recorder = Recorder()
        watcher = FileWatcher(
            path,
            recorder,
            mode=mode,
            poll_interval=poll_interval,
            observer_factory=observer_factory,
            debounce=debounce,
        )
        watcher.start()
        watchers.append(watcher)
        return watcher, recorder

    return start_watcher


def rename_over(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp-save")
    temp.write_text(text)
    os.replace(temp, path)


def write_in_place(path: Path, text: str) -> None:
    with path.open("r+") as handle:
        handle.truncate(0)
        handle.write(text)


def changed_line(path: Path, text: str) -> tuple[str, str]:
    pairs = zip(path.read_text().splitlines(), text.splitlines(), strict=True)
    return next((old, new) for old, new in pairs if old != new)


def save_with_sed(path: Path, text: str) -> None:
    if shutil.which("sed") is None:
        missing("sed is not installed")
    old, new = changed_line(path, text)
    subprocess.run(["sed", "-i", f"s/^{old}$/{new}/", str(path)], check=True)


def save_with_vim(path: Path, text: str) -> None:
    if shutil.which("vim") is None:
        missing("vim is not installed")
    old, new = changed_line(path, text)
    # backupskip lists /tmp by default, where vim then writes in place; emptied, vim saves
    # as it does in a home directory: test-create 4913, rename the file to name~, write anew.
    options = "set backupcopy=auto writebackup backupskip="
    command = ["vim", "-Es", "-u", "NONE", "-i", "NONE", "-N", "-c", options]
    subprocess.run([*command, "-c", f"%s/^{old}$/{new}/", "-c", "wq", str(path)], check=True)


def delete_and_recreate(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


def save_like_libreoffice(path: Path, text: str) -> None:
    lock = path.with_name(f".~lock.{path.name}#")
    lock.write_text("person,host,host,23.11.2025 12:00,file:///home/person/.config/libreoffice/4;")
    temp = path.with_name("lu1234abcd.tmp")
    temp.write_text(text)
    os.replace(temp, path)
    lock.unlink()


SAVES = {
    "in_place": write_in_place,
    "rename_over": rename_over,
    "sed_i": save_with_sed,
    "vim": save_with_vim,
    "delete_recreate": delete_and_recreate,
    "libreoffice": save_like_libreoffice,
}


def quiet_window() -> None:
    """Give ignored events time to show if they were not ignored: six debounce periods.

    Proving that nothing happens needs a window; without it the ignored events
    and the sentinel would fall into one burst and one look either way.
    """
    time.sleep(0.3)


def expect_only(watcher: FileWatcher, recorder: Recorder, expected: list[str]) -> None:
    """Make a sentinel save and check that what was reported up to it is exactly expected."""
    sentinel = csv_text(99, project="Sentinel")
    rename_over(watcher.path, sentinel)
    assert recorder.wait_for(version_of(sentinel))
    assert recorder.versions == [*expected, version_of(sentinel)]


# --- each save pattern, in each mode ---------------------------------------------


@pytest.mark.parametrize("mode", ["inotify", "watchdog", "poll"])
@pytest.mark.parametrize("save", list(SAVES.values()), ids=list(SAVES))
def test_each_save_pattern_is_reported_once_with_the_new_version(
    csv_path: Path,
    start: Callable[..., tuple[FileWatcher, Recorder]],
    mode: str,
    save: Callable[[Path, str], None],
) -> None:
    watcher, recorder = start(csv_path, mode)
    assert watcher.mode_in_use == mode
    new = csv_text(2)

    save(csv_path, new)

    assert recorder.wait_for(version_of(new)), f"no event for the save; got {recorder.versions}"
    assert csv_path.read_text() == new
    expect_only(watcher, recorder, [version_of(new)])


def test_inotify_reports_a_save_well_within_a_second(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    _watcher, recorder = start(csv_path, "inotify")
    new = csv_text(2)
    saved_at = time.monotonic()
    rename_over(csv_path, new)
    assert recorder.wait_for(version_of(new))
    assert time.monotonic() - saved_at < 0.5


@pytest.mark.parametrize("mode", ["inotify", "watchdog"])
@pytest.mark.parametrize("save", [rename_over, write_in_place], ids=["rename_over", "in_place"])
def test_a_symlinked_list_is_watched_at_its_target(
    tmp_path: Path,
    start: Callable[..., tuple[FileWatcher, Recorder]],
    mode: str,
    save: Callable[[Path, str], None],
) -> None:
    synced = tmp_path / "Dropbox"
    synced.mkdir()
    target = synced / "list.csv"
    target.write_text(csv_text(1))
    link = tmp_path / "priorities.csv"
    link.symlink_to(target)
    _watcher, recorder = start(link, mode)

    save(target, csv_text(2))
    assert recorder.wait_for(version_of(csv_text(2)))
    rename_over(link, csv_text(3))  # the link itself replaced by a file: still noticed
    assert recorder.wait_for(version_of(csv_text(3)))


# --- what is not a change ------------------------------------------------------


@pytest.mark.parametrize("mode", ["inotify", "watchdog", "poll"])
def test_a_touch_without_content_change_is_not_reported(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]], mode: str
) -> None:
    watcher, recorder = start(csv_path, mode)

    subprocess.run(["touch", str(csv_path)], check=True)
    csv_path.write_text(csv_text(1))  # rewritten with the same bytes: a new mtime, one more event

    assert wait_until(lambda: watcher.checks >= 1), "the watcher never looked at the touched file"
    expect_only(watcher, recorder, [])


def test_a_libreoffice_lock_file_coming_and_going_is_not_a_change(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, recorder = start(csv_path)
    lock = csv_path.with_name(f".~lock.{csv_path.name}#")

    lock.write_text("person,host,host,23.11.2025 12:00,file:///home/person/.config/libreoffice/4;")
    assert editor_lock_files(csv_path) == [lock]
    lock.unlink()
    assert editor_lock_files(csv_path) == []

    quiet_window()
    expect_only(watcher, recorder, [])
    assert watcher.checks == 1  # only the sentinel was hashed: the lock file was never looked at


def test_other_files_in_the_directory_are_ignored(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, recorder = start(csv_path)
    directory = csv_path.parent
    names = [
        ".priorities.csv.swp",
        "priorities.csv~",
        "4913",
        "~$priorities.csv",
        "x.tmp",
        "other.csv",
    ]

    for name in names:
        (directory / name).write_text("noise")
    (directory / "draft.csv").write_text(csv_text(5))
    os.replace(directory / "draft.csv", directory / "other.csv")
    for name in names:
        (directory / name).unlink()

    quiet_window()
    expect_only(watcher, recorder, [])
    assert watcher.checks == 1


def test_a_burst_of_twenty_writes_closer_than_the_debounce_is_reported_once_with_the_final_hash(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    # Writes 2.5 ms apart; a debounce 400 times that keeps the premise on a busy machine.
    debounce = 1.0
    watcher, recorder = start(csv_path, debounce=debounce)
    texts = [csv_text(100 + i) for i in range(20)]

    written = []
    for text in texts:
        write_in_place(csv_path, text)
        written.append(time.monotonic())
        time.sleep(0.0025)
    gaps = [b - a for a, b in itertools.pairwise(written)]
    assert max(gaps) < debounce, "a pause in the burst as long as the debounce ends the burst"

    assert recorder.wait_for(version_of(texts[-1]))
    assert recorder.versions == [version_of(texts[-1])]
    assert watcher.checks == 1


def test_the_quiet_period_is_counted_from_the_save_not_from_an_earlier_wake(
    csv_path: Path, watchers: list[FileWatcher | SourcePoller]
) -> None:
    recorder = Recorder()
    watcher = FileWatcher(csv_path, recorder, mode="inotify", debounce=0.2, poll_interval=3600)
    watcher.start()
    watchers.append(watcher)
    first = watcher.heartbeat_at
    assert wait_until(lambda: watcher.heartbeat_at > first)  # a fresh wait has just begun
    time.sleep(0.3)  # the save falls late in that wait, longer after it began than the debounce

    saved_at = time.monotonic()
    rename_over(csv_path, csv_text(2))

    assert recorder.wait_for(version_of(csv_text(2)))
    assert time.monotonic() - saved_at >= 0.2


def test_an_own_write_acknowledged_before_it_lands_is_not_reported(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, recorder = start(csv_path)
    own = csv_text(1).replace("Pending", "In Progress", 1)

    watcher.acknowledge(version_of(own))
    rename_over(csv_path, own)

    assert wait_until(lambda: watcher.version == version_of(own))
    expect_only(watcher, recorder, [])


def test_an_own_write_landing_after_a_persons_save_is_still_not_reported(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, recorder = start(csv_path)
    persons = csv_text(3)
    own = csv_text(3).replace("Pending", "In Progress", 1)

    watcher.acknowledge(version_of(own))
    rename_over(csv_path, persons)
    assert recorder.wait_for(version_of(persons))
    rename_over(csv_path, own)

    assert wait_until(lambda: watcher.version == version_of(own))
    expect_only(watcher, recorder, [version_of(persons)])


def test_bytes_restored_after_an_acknowledged_write_was_seen_are_reported_again(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, recorder = start(csv_path)
    own = csv_text(1).replace("Pending", "Complete", 1)
    watcher.acknowledge(version_of(own))
    rename_over(csv_path, own)
    assert wait_until(lambda: watcher.version == version_of(own))

    rename_over(csv_path, csv_text(4))
    assert recorder.wait_for(version_of(csv_text(4)))
    rename_over(csv_path, own)  # a person's undo brings the daemon's bytes back

    assert recorder.wait_for(version_of(own))
    assert recorder.versions == [version_of(csv_text(4)), version_of(own)]


def test_a_file_briefly_missing_is_not_an_error(
    csv_path: Path,
    start: Callable[..., tuple[FileWatcher, Recorder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher, recorder = start(csv_path)

    csv_path.unlink()
    assert wait_until(lambda: watcher.checks >= 1), "the deletion was never looked at"
    assert recorder.versions == []
    csv_path.write_text(csv_text(6))

    assert recorder.wait_for(version_of(csv_text(6)))
    assert recorder.versions == [version_of(csv_text(6))]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- start, acknowledgments before start, and odd starts ----------------------------


def test_a_version_acknowledged_before_start_that_the_file_no_longer_holds_is_reported(
    csv_path: Path, watchers: list[FileWatcher | SourcePoller]
) -> None:
    recorder = Recorder()
    watcher = FileWatcher(csv_path, recorder, mode="inotify", poll_interval=NO_SAFETY_NET)
    watcher.acknowledge(version_of(csv_text(0)))  # what the daemon loaded before the file changed

    watcher.start()
    watchers.append(watcher)

    assert recorder.wait_for(version_of(csv_text(1)))


def test_the_version_acknowledged_before_start_is_the_baseline(
    csv_path: Path, watchers: list[FileWatcher | SourcePoller]
) -> None:
    recorder = Recorder()
    watcher = FileWatcher(csv_path, recorder, mode="inotify", poll_interval=NO_SAFETY_NET)
    watcher.acknowledge(version_of(csv_text(1)))
    watcher.start()
    watchers.append(watcher)

    assert watcher.version == version_of(csv_text(1))
    expect_only(watcher, recorder, [])


def test_a_file_missing_at_start_is_reported_when_it_appears(
    tmp_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    path = tmp_path / "priorities.csv"
    _watcher, recorder = start(path)

    path.write_text(csv_text(8))

    assert recorder.wait_for(version_of(csv_text(8)))


def test_an_unknown_mode_is_rejected_with_its_name(csv_path: Path) -> None:
    with pytest.raises(UnknownWatchMode) as caught:
        FileWatcher(csv_path, Recorder(), mode="fanotify")
    assert "fanotify" in str(caught.value)
    assert caught.value.path == str(csv_path)


# --- choosing and keeping a mode ----------------------------------------------------


def inotify_limit_reached(directory: Path) -> InotifyDirectory:
    raise OSError(errno.EMFILE, "inotify instance limit reached")


def test_auto_falls_back_to_polling_when_inotify_cannot_be_set_up(
    csv_path: Path,
    start: Callable[..., tuple[FileWatcher, Recorder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher, recorder = start(
        csv_path, "auto", poll_interval=FAST_POLL, observer_factory=inotify_limit_reached
    )

    assert watcher.mode_in_use == "poll"
    assert any("polling" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    rename_over(csv_path, csv_text(2))
    assert recorder.wait_for(version_of(csv_text(2)))


def test_auto_uses_inotify_where_it_works_and_says_so(
    csv_path: Path,
    start: Callable[..., tuple[FileWatcher, Recorder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher, _recorder = start(csv_path, "auto", poll_interval=NO_SAFETY_NET)
    assert watcher.mode_in_use == "inotify"
    assert any("through inotify" in r.getMessage() for r in caplog.records)


def test_other_platforms_events_mean_what_inotify_s_would(tmp_path: Path) -> None:
    # What FSEvents / ReadDirectoryChangesW report arrives as watchdog events; the
    # watcher must read them as inotify events of the same directory entries.
    d = tmp_path
    cases = [
        (
            FileMovedEvent(str(d / "x.tmp"), str(d / "list.csv")),
            [("x.tmp", IN_MOVED_FROM), ("list.csv", IN_MOVED_TO)],
        ),
        (FileMovedEvent(str(d / "list.csv"), "/elsewhere/list.csv"), [("list.csv", IN_MOVED_FROM)]),
        (FileModifiedEvent(str(d / "list.csv")), [("list.csv", IN_MODIFY)]),
        (FileClosedEvent(str(d / "list.csv")), [("list.csv", IN_CLOSE_WRITE)]),
        (FileDeletedEvent(str(d / "sub" / "list.csv")), []),
        (DirDeletedEvent(str(d)), [("", IN_DELETE_SELF)]),
    ]
    for event, expected in cases:
        got = [(e.name, e.mask) for e in translate_watchdog_event(event, d)]
        assert got == expected, event


def test_auto_chooses_the_backend_by_platform() -> None:
    expected = InotifyDirectory if sys.platform.startswith("linux") else WatchdogDirectory
    assert platform_observer_factory() is expected


def test_inotify_mode_fails_loudly_when_inotify_cannot_be_set_up(csv_path: Path) -> None:
    watcher = FileWatcher(
        csv_path, Recorder(), mode="inotify", observer_factory=inotify_limit_reached
    )
    with pytest.raises(InotifyUnavailable) as caught:
        watcher.start()
    assert caught.value.path == str(csv_path.parent)
    assert "limit" in str(caught.value)


def test_events_that_never_arrive_are_caught_by_the_stat_safety_net(
    csv_path: Path, tmp_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    # Like Docker Desktop: inotify sets up fine, but no event for the file ever comes.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    watcher, recorder = start(
        csv_path, "auto", poll_interval=0.2, observer_factory=lambda _d: InotifyDirectory(elsewhere)
    )
    assert watcher.mode_in_use == "inotify"

    rename_over(csv_path, csv_text(2))

    assert recorder.wait_for(version_of(csv_text(2)))


def test_a_directory_deleted_and_created_again_is_watched_again(
    tmp_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    directory = tmp_path / "lists"
    directory.mkdir()
    path = directory / "priorities.csv"
    path.write_text(csv_text(1))
    _watcher, recorder = start(path)

    shutil.rmtree(directory)
    directory.mkdir()
    path.write_text(csv_text(9))

    assert recorder.wait_for(version_of(csv_text(9)))


# --- the thread ---------------------------------------------------------------------


def test_the_heartbeat_advances_while_nothing_happens(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    watcher, _recorder = start(csv_path)
    first = watcher.heartbeat_at
    assert wait_until(lambda: watcher.heartbeat_at >= first + 0.9, timeout=3.0)
    assert time.monotonic() - watcher.heartbeat_at < 1.5


def test_idle_watching_costs_almost_no_cpu(
    csv_path: Path, start: Callable[..., tuple[FileWatcher, Recorder]]
) -> None:
    start(csv_path, "auto", poll_interval=1.0)
    began_cpu, began = time.process_time(), time.monotonic()
    time.sleep(2.0)  # a measuring window, not a wait for a callback
    share = (time.process_time() - began_cpu) / (time.monotonic() - began)
    assert share < 0.01


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_stop_joins_the_thread_promptly_and_releases_its_descriptors(csv_path: Path) -> None:
    before = open_descriptors()
    watcher = FileWatcher(csv_path, Recorder(), mode="inotify", poll_interval=NO_SAFETY_NET)
    watcher.start()
    assert any(t.name == "watch:priorities.csv" for t in threading.enumerate())

    began = time.monotonic()
    watcher.stop()

    assert time.monotonic() - began < 0.5
    assert not any(t.name == "watch:priorities.csv" for t in threading.enumerate())
    assert open_descriptors() == before


def test_a_failing_callback_does_not_stop_the_watcher(
    csv_path: Path, watchers: list[FileWatcher | SourcePoller]
) -> None:
    recorder = Recorder()

    def on_change(version: str) -> None:
        recorder(version)
        if len(recorder.versions) == 1:
            raise RuntimeError("the daemon tripped")

    watcher = FileWatcher(csv_path, on_change, mode="inotify", poll_interval=NO_SAFETY_NET)
    watcher.start()
    watchers.append(watcher)
    rename_over(csv_path, csv_text(2))
    assert recorder.wait_for(version_of(csv_text(2)))
    rename_over(csv_path, csv_text(3))
    assert recorder.wait_for(version_of(csv_text(3)))


# --- editor lock files ----------------------------------------------------------------


def test_editor_lock_files_are_libreoffice_and_office_locks_but_not_vim_swap(
    csv_path: Path,
) -> None:
    directory = csv_path.parent
    (directory / ".priorities.csv.swp").write_text("vim")
    (directory / "priorities.csv~").write_text("backup")
    assert editor_lock_files(csv_path) == []

    libreoffice = directory / ".~lock.priorities.csv#"
    excel = directory / "~$priorities.csv"
    word = directory / "~$iorities.csv"
    for lock in (libreoffice, excel, word):
        lock.write_text("owner")

    assert sorted(editor_lock_files(csv_path)) == sorted([libreoffice, excel, word])


# --- the poller for sources nothing can watch ------------------------------------------


class FakeSheet:
    """A load() whose result a test sets, and that can be told to fail."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.failure: Exception | None = None
        self.loads = 0

    def __call__(self) -> str:
        self.loads += 1
        if self.failure is not None:
            raise self.failure
        return self.version


def start_poller(
    sheet: FakeSheet, watchers: list[FileWatcher | SourcePoller], interval: float = 0.02
) -> tuple[SourcePoller, Recorder]:
    recorder = Recorder()
    poller = SourcePoller(sheet, recorder, interval, name="sheet")
    watchers.append(poller)
    return poller, recorder


def test_the_poller_reports_a_new_version_once_and_not_the_baseline(
    watchers: list[FileWatcher | SourcePoller],
) -> None:
    sheet = FakeSheet("v1")
    poller, recorder = start_poller(sheet, watchers)
    poller.start()
    assert wait_until(lambda: poller.version == "v1")

    sheet.version = "v2"
    assert recorder.wait_for("v2")
    loads = sheet.loads
    assert wait_until(lambda: sheet.loads >= loads + 3)
    assert recorder.versions == ["v2"]


def test_the_poller_survives_and_counts_failing_loads(
    watchers: list[FileWatcher | SourcePoller], caplog: pytest.LogCaptureFixture
) -> None:
    sheet = FakeSheet("v1")
    sheet.failure = ConnectionError("429 Too Many Requests")
    poller, recorder = start_poller(sheet, watchers)
    poller.start()

    assert wait_until(lambda: poller.errors >= 3)
    assert poller.last_error == "ConnectionError: 429 Too Many Requests"
    assert any("429" in r.getMessage() for r in caplog.records)
    sheet.failure = None
    sheet.version = "v2"
    poller.acknowledge("v0")  # the daemon's own load before: v2 is news
    assert recorder.wait_for("v2")


def test_the_poller_does_not_report_an_acknowledged_version(
    watchers: list[FileWatcher | SourcePoller],
) -> None:
    sheet = FakeSheet("v1")
    poller, recorder = start_poller(sheet, watchers)
    poller.acknowledge("v1")
    poller.start()
    assert wait_until(lambda: poller.version == "v1")

    poller.acknowledge("v2")  # the daemon's own write-back
    sheet.version = "v2"
    assert wait_until(lambda: poller.version == "v2")
    sheet.version = "v3"
    assert recorder.wait_for("v3")
    assert recorder.versions == ["v3"]


def test_the_poller_heartbeat_advances_and_stop_is_prompt_with_a_long_interval(
    watchers: list[FileWatcher | SourcePoller],
) -> None:
    poller, _recorder = start_poller(FakeSheet("v1"), watchers, interval=3600.0)
    poller.start()
    first = poller.heartbeat_at
    assert wait_until(lambda: poller.heartbeat_at >= first + 0.9, timeout=3.0)

    began = time.monotonic()
    poller.stop()
    assert time.monotonic() - began < 0.5
    assert not any(t.name == "poll:sheet" for t in threading.enumerate())
