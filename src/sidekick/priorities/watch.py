"""Noticing that the priority list changed: file saves by any editor, and polled sources.

The file is watched through its directory, never by itself: editors save by
writing a new file and renaming it over the old one, and an inotify watch on
the old inode (or a single-file bind mount) would go stale after the first
save. Only events that name the list count, so editor swap, backup, temp and
lock files in the same directory are ignored, except a rename onto the list's
name, which is how most editors save.

Events only say "look again". A burst of them is collapsed into one look after
a short quiet period, and the look hashes the content: a change is reported
only when the hash differs from the version last known. The daemon tells the
watcher about versions it already knows (its own write-back, a load) through
``acknowledge``, so its own writes never come back to it as changes.

inotify is used through ctypes directly rather than through watchdog: one
thread blocked in ``poll(2)`` instead of watchdog's three, and no 0.5 s
rename-pairing queue in the path of a save (watchdog holds every unpaired
IN_MOVED_FROM for half a second, head-of-line). Where inotify cannot be set
up, or events never arrive (Docker Desktop, network filesystems), the same
thread stats the file every ``poll_interval``; in inotify mode that stat is a
cheap safety net against events that silently never come.

That ctypes path is Linux's. On every other platform (macOS's FSEvents,
Windows' ReadDirectoryChangesW, the BSDs' kqueue) the directory's events come
from ``watchdog``'s native observer, fed into the same loop through a pipe, so a
person running ``sidekick run`` on a laptop is not left waiting for the poll.

A symlinked list is watched at both ends: the link's directory (the link
replaced) and the target's (the file itself saved, e.g. in a synced folder).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import errno
import functools
import logging
import math
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from sidekick.errors import SidekickError
from sidekick.priorities.base import content_version

logger = logging.getLogger(__name__)

# "watchdog" forces the other platforms' backend on Linux too (to measure or test it).
MODES = ("auto", "inotify", "watchdog", "poll")
# The daemon's health check reads heartbeat_at; the thread must show life this often.
HEARTBEAT_INTERVAL = 1.0
# A steady stream of writes must not postpone the look forever.
LONGEST_BURST = 1.0
_STOP_TIMEOUT = 5.0
# Acknowledged versions that never landed (a write-back that lost its race) must not pile up.
_MAX_EXPECTED = 16

Clock = Callable[[], float]


# --- errors ---------------------------------------------------------------------


@dataclass(eq=False)
class WatchError(SidekickError):
    """A watch could not be set up as configured."""

    path: str
    problem: str

    def message(self) -> str:
        return f"{self.path}: {self.problem}"


class UnknownWatchMode(WatchError):
    """The configured watch mode is not one of auto, inotify, poll."""


class InotifyUnavailable(WatchError):
    """inotify was asked for explicitly and cannot be set up here."""


# --- inotify through ctypes -----------------------------------------------------

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

# Every way a file's content can change under its name; open/close-nowrite/attrib
# cannot change content, so they are not even delivered.
_WATCH_MASK = (
    IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
# After these the watch no longer describes the directory at the configured path.
WATCH_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
_EVENT_HEADER = struct.Struct("iIII")
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class DirectoryEvent:
    """One event in a watched directory: the entry's name ('' for the directory itself)."""

    name: str
    mask: int


class DirectoryEvents(Protocol):
    """A readable source of events for one directory (what an observer factory returns)."""

    def fileno(self) -> int: ...

    def read(self) -> list[DirectoryEvent]: ...

    def close(self) -> None: ...


ObserverFactory = Callable[[Path], DirectoryEvents]


def platform_observer_factory() -> ObserverFactory:
    """inotify through ctypes on Linux; watchdog's native observer everywhere else."""
    return InotifyDirectory if sys.platform.startswith("linux") else WatchdogDirectory


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _os_error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")


def _inotify_functions() -> tuple[Callable[[int], int], Callable[[int, bytes, int], int]]:
    libc = _libc()
    init1 = getattr(libc, "inotify_init1", None)
    add_watch = getattr(libc, "inotify_add_watch", None)
    if init1 is None or add_watch is None:
        raise OSError(errno.ENOSYS, "this C library has no inotify")
    init1.argtypes = [ctypes.c_int]
    init1.restype = ctypes.c_int
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add_watch.restype = ctypes.c_int
    return init1, add_watch


def parse_inotify_events(buffer: bytes) -> list[DirectoryEvent]:
    """Decode what read(2) returned from an inotify descriptor (whole events only)."""
    events: list[DirectoryEvent] = []
    offset = 0
    while offset + _EVENT_HEADER.size <= len(buffer):
        _wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(buffer, offset)
        start = offset + _EVENT_HEADER.size
        name = buffer[start : start + length].rstrip(b"\0")
        events.append(DirectoryEvent(os.fsdecode(name), mask))
        offset = start + length
    return events


class InotifyDirectory:
    """One non-blocking inotify instance watching one directory (not its subdirectories)."""

    def __init__(self, directory: Path) -> None:
        init1, add_watch = _inotify_functions()
        fd = init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise _os_error("inotify_init1")
        if add_watch(fd, os.fsencode(directory), _WATCH_MASK) < 0:
            error = _os_error(f"inotify_add_watch({directory})")
            os.close(fd)
            raise error
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def read(self) -> list[DirectoryEvent]:
        events: list[DirectoryEvent] = []
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return events
            events.extend(parse_inotify_events(chunk))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# --- watchdog, for the platforms without the ctypes path ---------------------------


class WatchdogDirectory:
    """One directory's events from watchdog's native observer, readable like inotify's.

    watchdog calls back on its own thread; the events are queued and a byte in a
    pipe wakes the watcher's ``poll(2)``, so both backends share one loop.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: collections.deque[DirectoryEvent] = collections.deque()
        self._wake = _WakePipe()
        self._wake.open()
        self._observer = Observer()
        try:
            self._observer.schedule(_Forwarder(self), str(directory), recursive=False)
            self._observer.start()
        except BaseException:
            self._wake.close()
            raise

    def fileno(self) -> int:
        return self._wake.fileno()

    def read(self) -> list[DirectoryEvent]:
        self._wake.drain()
        events = []
        while self._queue:
            events.append(self._queue.popleft())
        return events

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(_STOP_TIMEOUT)
        self._wake.close()

    def push(self, events: list[DirectoryEvent]) -> None:
        if events:
            self._queue.extend(events)
            self._wake.poke()


class _Forwarder(FileSystemEventHandler):
    """watchdog's event handler: translates each event into inotify's terms."""

    def __init__(self, target: WatchdogDirectory) -> None:
        self._target = target

    def dispatch(self, event: FileSystemEvent) -> None:
        self._target.push(translate_watchdog_event(event, self._target.directory))


_WATCHDOG_MASKS = {
    "created": IN_CREATE,
    "modified": IN_MODIFY,
    "closed": IN_CLOSE_WRITE,
    "deleted": IN_DELETE,
}


def translate_watchdog_event(event: FileSystemEvent, directory: Path) -> list[DirectoryEvent]:
    """A watchdog FileSystemEvent as the inotify events it stands for."""
    kind = event.event_type
    source = Path(os.fsdecode(event.src_path))
    if source == directory and kind in ("deleted", "moved"):
        return [DirectoryEvent("", IN_DELETE_SELF)]
    if kind == "moved":
        dest = Path(os.fsdecode(event.dest_path))
        moved = [(source, IN_MOVED_FROM), (dest, IN_MOVED_TO)]
        return [DirectoryEvent(p.name, mask) for p, mask in moved if p.parent == directory]
    mask = _WATCHDOG_MASKS.get(kind)
    if mask is None or source.parent != directory:
        return []
    return [DirectoryEvent(source.name, mask)]


# --- versions -------------------------------------------------------------------


class VersionBook:
    """The version last known, and versions announced before they land.

    A version is "expected" when the daemon acknowledged it before seeing it in
    the source (its own write-back). Seeing it then is no change, even if a
    person's save was reported in between; seeing it consumes it, and every
    version acknowledged before it, so a person who later restores those exact
    bytes is reported again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: str | None = None
        self._seen = False
        self._expected: collections.deque[str] = collections.deque(maxlen=_MAX_EXPECTED)

    @property
    def known(self) -> str | None:
        return self._known

    @property
    def acknowledged(self) -> bool:
        """Whether any version was acknowledged and not seen yet."""
        return bool(self._expected)

    def acknowledge(self, version: str) -> None:
        with self._lock:
            if version != self._known and version not in self._expected:
                self._expected.append(version)

    def settle(self, version: str | None) -> bool:
        """Take what the source holds at start as the baseline; False when it must be reported.

        It must be reported when the daemon acknowledged something else before
        the watch began: the daemon's list is not what the source now holds.
        """
        with self._lock:
            if self._expected and version not in self._expected:
                return False
            if version is not None:
                self._consume(version)
            self._known = version
            self._seen = True
            return True

    def observe(self, version: str) -> bool:
        """Record what the source holds now; True when that is news to the daemon."""
        with self._lock:
            if version == self._known:
                return False
            first = not self._seen and not self._expected
            self._known = version
            self._seen = True
            return not self._consume(version) and not first

    def _consume(self, version: str) -> bool:
        if version not in self._expected:
            return False
        while self._expected.popleft() != version:
            pass
        return True


# --- timing helpers ---------------------------------------------------------------


class Debouncer:
    """Collects a burst of events and says when it has been quiet long enough."""

    def __init__(self, quiet: float, longest: float = LONGEST_BURST) -> None:
        self.quiet = quiet
        self.longest = max(longest, quiet)
        self._first: float | None = None
        self._last = 0.0

    def poke(self, now: float) -> None:
        if self._first is None:
            self._first = now
        self._last = now

    def wait(self, now: float) -> float | None:
        """Seconds until the burst is due, or None when nothing is pending."""
        if self._first is None:
            return None
        due = min(self._last + self.quiet, self._first + self.longest)
        return max(0.0, due - now)

    def take(self, now: float) -> bool:
        """True once per burst, when it is due; the burst is then over."""
        wait = self.wait(now)
        if wait is None or wait > 0:
            return False
        self._first = None
        return True


Signature = tuple[int, int, int, int, int]


def _signature_of(status: os.stat_result) -> Signature:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def file_signature(path: Path) -> Signature | None:
    """What a stat says about a file's identity and content; None when it is missing."""
    try:
        return _signature_of(os.stat(path))
    except FileNotFoundError:
        return None


def read_version(path: Path) -> tuple[str, Signature] | None:
    """The content version of a file and its signature when read; None when it is missing."""
    try:
        with path.open("rb") as handle:
            signature = _signature_of(os.fstat(handle.fileno()))
            data = handle.read()
    except FileNotFoundError:
        return None
    return content_version(data), signature


class StatProbe:
    """Stats a file every ``interval`` seconds and says when its signature moved."""

    def __init__(self, path: Path, interval: float, now: float) -> None:
        self.path = path
        self.interval = interval
        self.signature = file_signature(path)
        self._next = now + interval

    def wait(self, now: float) -> float:
        return max(0.0, self._next - now)

    def changed(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.interval
        try:
            signature = file_signature(self.path)
        except OSError as exc:
            logger.debug("cannot stat %s: %s", self.path, exc)
            return False
        if signature == self.signature:
            return False
        self.signature = signature
        return True


# --- the file watcher -------------------------------------------------------------


class FileWatcher:
    """Calls ``on_change(version)`` from its own thread when the file's content changes."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[str], None],
        *,
        mode: str = "auto",
        debounce: float = 0.05,
        poll_interval: float = 1.0,
        clock: Clock = time.monotonic,
        observer_factory: ObserverFactory | None = None,
    ) -> None:
        if mode not in MODES:
            expected = ", ".join(MODES)
            raise UnknownWatchMode(str(path), f"unknown watch mode {mode!r} (expected {expected})")
        self.path = Path(path)
        self.mode = mode
        self._on_change = on_change
        self._clock = clock
        self._factory = observer_factory or _factory_for(mode)
        self._event_mode = "watchdog" if self._factory is WatchdogDirectory else "inotify"
        self._versions = VersionBook()
        self._debouncer = Debouncer(debounce)
        self._probe = StatProbe(self.path, poll_interval, clock())
        self._links = [
            _EventLink(directory, self._factory, name) for directory, name in _watched(self.path)
        ]
        self._mode_in_use: str | None = None
        self._heartbeat_at = clock()
        self._checks = 0
        self._missing = False
        self._wake = _WakePipe()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the daemon reads and calls --

    @property
    def mode_in_use(self) -> str | None:
        """'inotify', 'watchdog' or 'poll' once started; None before."""
        return self._mode_in_use

    @property
    def heartbeat_at(self) -> float:
        """The clock's time of the watcher thread's last sign of life."""
        return self._heartbeat_at

    @property
    def name(self) -> str:
        return f"watch:{self.path.name}"

    @property
    def alive(self) -> bool:
        """False before start, after stop, and once the thread died (the daemon restarts it)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def version(self) -> str | None:
        """The content version last seen or acknowledged as seen."""
        return self._versions.known

    @property
    def checks(self) -> int:
        """How many times the content was read and hashed (each settled burst once)."""
        return self._checks

    def acknowledge(self, version: str) -> None:
        """This version is known to the daemon already: seeing it is no change."""
        self._versions.acknowledge(version)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._mode_in_use = self._connect()
        # The baseline is taken after the watch exists, so no save can slip between them.
        now = self._clock()
        self._probe = StatProbe(self.path, self._probe.interval, now)
        self._take_baseline(now)
        self._stopping.clear()
        self._wake.open()
        self._thread = threading.Thread(target=self._run, name=f"watch:{self.path.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.poke()
        if thread is threading.current_thread():
            return
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            logger.warning("watcher of %s did not stop within %.0fs", self.path, _STOP_TIMEOUT)
            return
        self._wake.close()
        self._thread = None

    # -- setting up --

    def _connect(self) -> str:
        if self.mode == "poll":
            logger.info("watching %s by polling every %.2fs", self.path, self._probe.interval)
            return "poll"
        for link in self._links:
            try:
                link.connect()
            except OSError as exc:
                mode = self._connect_failed(exc)
                if mode == "poll":
                    return mode
                continue
            logger.info("watching %s through %s on %s", self.path, self._event_mode, link.directory)
        return self._event_mode

    def _connect_failed(self, exc: OSError) -> str:
        if exc.errno == errno.ENOENT:
            # A directory that is not there yet is no reason to give up inotify.
            logger.warning("cannot watch %s yet (%s); retrying every second", self.path, exc)
            return self._event_mode
        if self.mode in ("inotify", "watchdog"):
            raise InotifyUnavailable(
                str(self.path.parent), f"cannot set up inotify: {exc}"
            ) from exc
        logger.warning(
            "cannot watch %s with %s (%s); polling every %.2fs instead",
            self.path,
            self._event_mode,
            exc,
            self._probe.interval,
        )
        for link in self._links:
            link.close()
        return "poll"

    def _take_baseline(self, now: float) -> None:
        found = read_version(self.path)
        if found is not None:
            self._probe.signature = found[1]
        if not self._versions.settle(found[0] if found else None):
            self._debouncer.poke(now)

    # -- the thread --

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._tick()
        finally:
            for link in self._links:
                link.close()

    def _tick(self) -> None:
        ready = self._wait(self._clock())
        # The time after the wait: a burst's quiet period starts at its event, not before.
        now = self._clock()
        self._heartbeat_at = now
        for fd in ready:
            self._on_ready(fd, now)
        if self._mode_in_use == self._event_mode and self._reconnect(now):
            self._debouncer.poke(now)
        if self._probe.changed(now):
            self._debouncer.poke(now)
        if self._debouncer.take(now):
            self._confirm()

    def _wait(self, now: float) -> list[int]:
        wait = min(HEARTBEAT_INTERVAL, self._probe.wait(now))
        pending = self._debouncer.wait(now)
        if pending is not None:
            wait = min(wait, pending)
        poller = select.poll()
        poller.register(self._wake.fileno(), select.POLLIN)
        for link in self._links:
            if link.fileno() >= 0:
                poller.register(link.fileno(), select.POLLIN)
        return [fd for fd, _ in poller.poll(math.ceil(wait * 1000))]

    def _on_ready(self, fd: int, now: float) -> None:
        if fd == self._wake.fileno():
            self._wake.drain()
            return
        for link in self._links:
            if link.fileno() == fd and link.relevant():
                self._debouncer.poke(now)

    def _reconnect(self, now: float) -> bool:
        # Every link gets its try; any that came back means "look again".
        return any([link.reconnect(now) for link in self._links])

    def _confirm(self) -> None:
        self._checks += 1
        try:
            found = read_version(self.path)
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.path, exc)
            return
        self._note_presence(found is not None)
        if found is None:
            return
        version, signature = found
        self._probe.signature = signature
        if self._versions.observe(version):
            self._report(version)

    def _note_presence(self, present: bool) -> None:
        if present == self._missing:
            # A save by delete-then-create leaves the name empty for a moment; that is normal.
            state = "is back" if present else "is missing; keeping the last version"
            logger.info("%s %s", self.path, state)
        self._missing = not present

    def _report(self, version: str) -> None:
        logger.info("%s changed (version %s)", self.path, version[:12])
        try:
            self._on_change(version)
        except Exception:
            logger.exception("handling a change of %s failed", self.path)


def _factory_for(mode: str) -> ObserverFactory:
    if mode == "watchdog":
        return WatchdogDirectory
    if mode == "inotify":
        return InotifyDirectory
    return platform_observer_factory()


def _watched(path: Path) -> list[tuple[Path, str]]:
    """The directories and names to watch: the path's, and a symlink target's too."""
    places = [(path.parent, path.name)]
    target = Path(os.path.realpath(path))
    if target != path and (target.parent, target.name) not in places:
        places.append((target.parent, target.name))
    return places


class _EventLink:
    """The inotify side of a watcher: connecting, filtering events, and reconnecting."""

    def __init__(self, directory: Path, factory: ObserverFactory, name: str) -> None:
        self.directory = directory
        self.name = name
        self._factory = factory
        self._events: DirectoryEvents | None = None
        self._next_retry = 0.0

    def fileno(self) -> int:
        return self._events.fileno() if self._events is not None else -1

    def connect(self) -> None:
        self._events = self._factory(self.directory)

    def relevant(self) -> bool:
        """Read what is pending: True when it may have changed the file with our name."""
        if self._events is None:
            return False
        events = self._events.read()
        if any(event.mask & WATCH_LOST for event in events):
            logger.warning("lost the watch on %s (moved, deleted or unmounted)", self.directory)
            self.close()
            return True
        return any(event.name == self.name or event.mask & IN_Q_OVERFLOW for event in events)

    def reconnect(self, now: float) -> bool:
        """Try again, at most once a second, to watch a directory whose watch was lost."""
        if self._events is not None or now < self._next_retry:
            return False
        self._next_retry = now + HEARTBEAT_INTERVAL
        try:
            self.connect()
        except OSError as exc:
            logger.debug("cannot watch %s yet: %s", self.directory, exc)
            return False
        logger.info("watching %s again", self.directory)
        return True

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None


class _WakePipe:
    """Wakes the watcher thread out of poll(2) at once when it must stop."""

    def __init__(self) -> None:
        self._read = -1
        self._write = -1

    def open(self) -> None:
        if self._read < 0:
            self._read, self._write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def poke(self) -> None:
        # A full pipe already wakes the thread; a closed one has no thread to wake.
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1


# --- editors' lock files -----------------------------------------------------------


def editor_lock_files(path: Path) -> list[Path]:
    """Lock files of editors that hold this file open and will overwrite it on save.

    LibreOffice keeps ``.~lock.<name>#`` and Microsoft Office ``~$<name>`` (Word
    spells it with the name's first two characters replaced) beside the file
    while it is open. vim's ``.swp`` is left out on purpose: vim keeps it as
    long as the file is open and notices outside changes by itself.
    """
    path = Path(path)
    name = path.name
    candidates = dict.fromkeys((f".~lock.{name}#", f"~${name}", f"~${name[2:]}"))
    found = (path.parent / candidate for candidate in candidates)
    return [lock for lock in found if os.path.lexists(lock)]


# --- sources that cannot be watched -------------------------------------------------


class SourcePoller:
    """Calls ``load()`` every ``interval`` seconds and ``on_change(version)`` on a new version.

    For sources nothing can watch (a Google Sheet). Without an acknowledged
    version the first load is taken at once as the baseline; after an
    acknowledgment the first load waits one interval.
    """

    def __init__(
        self,
        load: Callable[[], str],
        on_change: Callable[[str], None],
        interval: float,
        *,
        clock: Clock = time.monotonic,
        name: str = "source",
    ) -> None:
        self.name = name
        self.interval = interval
        self._load = load
        self._on_change = on_change
        self._clock = clock
        self._versions = VersionBook()
        self._heartbeat_at = clock()
        self._errors = 0
        self._last_error: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def heartbeat_at(self) -> float:
        return self._heartbeat_at

    @property
    def version(self) -> str | None:
        return self._versions.known

    @property
    def errors(self) -> int:
        """How many loads raised, since start."""
        return self._errors

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def acknowledge(self, version: str) -> None:
        self._versions.acknowledge(version)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"poll:{self.name}")
        self._thread.daemon = True
        self._thread.start()
        logger.info("polling %s every %.1fs", self.name, self.interval)

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        if thread is threading.current_thread():
            return
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            logger.warning("poller of %s did not stop within %.0fs", self.name, _STOP_TIMEOUT)
            return
        self._thread = None

    def _run(self) -> None:
        # With nothing acknowledged, the sooner the baseline, the fewer changes it absorbs.
        next_poll = self._clock() + (self.interval if self._versions.acknowledged else 0.0)
        while not self._stopping.is_set():
            now = self._clock()
            self._heartbeat_at = now
            if now >= next_poll:
                self._poll()
                next_poll = self._clock() + self.interval
                continue
            self._stopping.wait(min(HEARTBEAT_INTERVAL, next_poll - now))

    def _poll(self) -> None:
        try:
            version = self._load()
        except Exception as exc:
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("polling %s failed (%d so far): %s", self.name, self._errors, exc)
            logger.debug("polling %s failed", self.name, exc_info=True)
            return
        if self._versions.observe(version):
            logger.info("%s changed (version %s)", self.name, version[:12])
            try:
                self._on_change(version)
            except Exception:
                logger.exception("handling a change of %s failed", self.name)
