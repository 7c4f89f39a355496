"""The configuration of a command that only looks, kept between its runs while its inputs stay.

Why: ``sidekick prod status`` and ``prod logs`` are the commands a person runs most, and
they are measured against ``docker compose ps`` and ``docker logs`` (bench/bench_prod.py,
target <= 1.5x each). A full :func:`~sidekick.config.load_config` costs such a run
PyYAML's import, the parse of config.yaml and of every production compose file, and the
import of every section's class with what those need. Measured on the 2-core CI machine
(medians of 15 runs, two runs each): ``prod status`` of a 10-container project took
126-134 ms with a full load and 88-93 ms served a kept view; ``prod logs --tail 10000``
161-189 ms and 127-138 ms. So a look keeps what it needs of the configuration (a
:class:`View`, such as :class:`~sidekick.production.view.ProductionView`), with the
compose files that load read, and the next look takes them while nothing they came from
has changed.

An entry is served only while all of these are as they were when it was written, else the
configuration is loaded in full (raising what a load raises) and the entry written again:

- the config file's bytes, its path and resolved path and its directory's (relative paths
  resolve against it), the ``SIDEKICK_`` environment, ``HOME`` (``~`` in paths);
- this installation of sidekick (its package directory and version, the interpreter), and
  the source of every sidekick module the writer had loaded (size, modification time);
- every path the configuration names, and every path the view says it depends on (each
  compose file name Compose would look for in a production directory, the directories
  under ``projects_root`` a workspace may be): what kind of thing it is (a file, a
  directory, missing) and where it resolves to, which is what the checks of a load ask
  of them;
- every compose file the view's projects use (inode, size, modification time), whose name
  and services are then served without parsing
  (:func:`sidekick.production.settings.read_compose`).

No entry is written when one of those compose files, or the directory holding one of those
paths, changed in the last 2 s, nor when the config file was written during the load: as git
does not trust an index entry as new as the index ("racily clean"), a change in the same
tick of the file system's clock, or during the load, could leave the entry looking current.
Not followed: what else a check asks of the system (the length limits of a file system,
the user database behind ``~user``). Only a load that succeeded is kept, and only from a
regular config file (a pipe is read once, by the load).

Entries live in ``$XDG_CACHE_HOME/sidekick`` (else ``~/.cache/sidekick``; a relative
``XDG_CACHE_HOME`` is ignored, as the XDG base directory specification says, and without
an absolute ``HOME`` nothing is kept), one per installation, view and config path. As
unpickling an entry runs what it names, an entry is read only from a directory that is
this user's and writable by no one else, opened through that directory without following
a link, and only if it is a regular file of this user's, with one link, writable by no one
else; missing directories are made only inside ones of this user's. An entry is two
pickles: its :class:`Header` (what it was made from), compared first, then the view. A
cache that cannot be used or written costs a full load, never the command. At most
:data:`KEEP` entries are kept, the least recently used removed first.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol, Self, TypeVar

import sidekick
from sidekick.config_file import ENV_PREFIX, config_path
from sidekick.production import settings as production_settings

if TYPE_CHECKING:
    from sidekick.config import Config

FORMAT = 3
KEEP = 32
# File systems stamp a change with a clock that ticks every few milliseconds (the kernel's
# coarse clock); a margin of seconds also covers file systems that keep whole seconds.
RACY_NS = 2_000_000_000
# A temporary file this old was left by a writer that was killed.
LEFT_BEHIND_NS = 60_000_000_000
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir"}
_SHARED = stat.S_IWGRP | stat.S_IWOTH


class View(Protocol):
    """What a command needs of the configuration, made from it and kept in its place."""

    @classmethod
    def of(cls, config: Config) -> Self: ...

    @staticmethod
    def decided_by(config: Config) -> Iterable[Path]:
        """Paths besides the configured ones whose kind (file, directory, missing) the view
        depends on."""
        ...


V = TypeVar("V", bound=View)


class PathState(NamedTuple):
    """A path as the checks of a load see it: what kind of thing is there (None: nothing)
    and where it resolves to ("" when it cannot be resolved)."""

    path: str
    kind: str | None
    resolved: str

    @classmethod
    def of(cls, path: Path) -> PathState:
        try:
            mode: int | None = path.stat().st_mode
        except (OSError, ValueError):  # ValueError: a NUL in the configured text
            mode = None
        kind = None if mode is None else _KINDS.get(stat.S_IFMT(mode), "other")
        try:
            resolved = str(path.resolve())
        except (OSError, ValueError, RuntimeError):  # RuntimeError: a loop of links
            resolved = ""
        return cls(str(path), kind, resolved)


class Header(NamedTuple):
    """What an entry was made from: ``inputs`` must equal this run's, the rest must still
    be so (see the module's docstring)."""

    inputs: dict[str, Any]
    paths: list[PathState]
    code: list[tuple[str, tuple[int, ...] | None]]
    compose: list[production_settings.ComposeRead]

    def still_holds(self) -> bool:
        return (
            all(PathState.of(Path(p.path)) == p for p in self.paths)
            and all(_signature(Path(source)) == seen for source, seen in self.code)
            and all(_compose_key(key.file) == key for key, _ in self.compose)
        )


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/sidekick``, else ``$HOME/.cache/sidekick`` (the XDG base
    directories); None without an absolute directory to put it in."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "sidekick"


def load_view(view: type[V], path: str | Path | None = None) -> V:
    """The view of the configuration :func:`~sidekick.config.load_config` would load now;
    raises what it raises. Without a regular config file (defaults only, or a pipe) or a
    cache directory, nothing is kept."""
    file = config_path(path)
    directory = cache_dir()
    read = _read_regular(file) if file is not None else None
    if file is None or read is None or directory is None:
        return view.of(_load(path))
    text, seen = read
    inputs = _inputs(file, text, f"{view.__module__}.{view.__qualname__}")
    named = repr((inputs["install"], inputs["view"], inputs["file"])).encode()
    entry = directory / f"config-{zlib.crc32(named):08x}.pickle"
    served = _served(entry, inputs)
    if isinstance(served, view):
        return served
    config = _load(path)
    made = view.of(config)
    with contextlib.suppress(Exception):  # whatever fails here costs the next look a load
        header = _header(config, view, inputs)
        # Unless the file was written while the load read it (even with the same bytes).
        if header is not None and _read_regular(file) == (text, seen):
            _write(entry, header, made)
    return made


def _load(path: str | Path | None) -> Config:
    from sidekick.config import load_config

    return load_config(path)


def _read_regular(file: Path) -> tuple[bytes, tuple[int, ...]] | None:
    """A regular file's bytes, with its inode, size and times of change (ns); None for
    anything else (a pipe would be emptied for the load) or a file that cannot be read."""
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):
            return None
        with open(file, "rb") as handle:
            seen = os.fstat(handle.fileno())
            text = handle.read()
    except OSError:
        return None  # the load says what is wrong with it
    return text, (seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)


def _inputs(file: Path, text: bytes, view: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "install": (
            os.path.dirname(sidekick.__file__ or ""),
            sidekick.__version__,
            sys.executable,
            sys.version,
        ),
        "view": view,
        "file": str(file.absolute()),
        "resolved": str(file.resolve()),
        "base": str(file.parent.resolve()),
        "text": text,
        "environ": sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)),
        "home": os.environ.get("HOME", ""),
    }


def _header(config: Config, view: type[View], inputs: dict[str, Any]) -> Header | None:
    """What the entry is made from, or None when it changed too recently to be trusted."""
    try:
        compose = production_settings.compose_reads(config.production.values())
    except ValueError:
        return None  # a compose file changed since the load read it
    paths = [*_configured_paths(config), *view.decided_by(config)]
    recent = [key.mtime_ns for key, _ in compose] + [_mtime(p.parent) for p in paths]
    if any(_racy(mtime) for mtime in recent):
        return None
    states = [PathState.of(p) for p in paths]
    code = [(str(p), _signature(p)) for p in _code()]
    return Header(inputs, states, code, compose)


def _served(entry: Path, inputs: dict[str, Any]) -> object | None:
    """The entry's view, if the entry is this user's own and was made from what is here now."""
    try:
        with _open_own(entry) as handle:
            header = pickle.load(handle)  # noqa: S301 - this user's own file, see _open_own
            if not isinstance(header, Header) or header.inputs != inputs:
                return None
            if not header.still_holds():
                return None
            production_settings.remember_compose_reads(header.compose)
            view: object = pickle.load(handle)  # noqa: S301
            os.utime(handle.fileno())  # used: the last to be pruned
            return view
    except Exception:  # missing, foreign, damaged, or pickled by other code: a full load
        return None


def _open_own(entry: Path) -> IO[bytes]:
    """The entry opened for reading; PermissionError unless its directory and the entry
    are this user's and writable by no one else, and neither is a link."""
    folder = os.open(entry.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if not _private(os.fstat(folder)):
            raise PermissionError(f"{entry.parent} is not this user's alone")
        fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    finally:
        os.close(folder)
    seen = os.fstat(fd)
    if not (stat.S_ISREG(seen.st_mode) and seen.st_nlink == 1 and _private(seen)):
        os.close(fd)
        raise PermissionError(f"{entry} is not this user's alone")
    return os.fdopen(fd, "rb")


def _private(seen: os.stat_result) -> bool:
    return seen.st_uid == os.geteuid() and not seen.st_mode & _SHARED


def _write(entry: Path, header: Header, made: object) -> None:
    """Write the entry in place of the old one (a new file renamed over it); raises OSError."""
    _make_own_directory(entry.parent)
    folder = os.open(entry.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if not _private(os.fstat(folder)):
            return
        temp = f".{entry.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(temp, flags, 0o600, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(made, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, entry.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder)
            raise
        _prune(folder)
    finally:
        os.close(folder)


def _make_own_directory(directory: Path) -> None:
    """Make the directory (0700) and any missing parent, each only inside a directory of
    this user's: root running with another user's HOME leaves that home as it was."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        if each.parent.stat().st_uid != os.geteuid():
            raise PermissionError(f"{each.parent} is not this user's")
        each.mkdir(mode=0o700)


def _prune(folder: int) -> None:
    """The :data:`KEEP` entries last used stay; temporary files of killed writers go."""
    entries = []
    now = time.time_ns()
    for name in os.listdir(folder):
        with contextlib.suppress(OSError):
            used = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime_ns
            if name.startswith("config-") and name.endswith(".pickle"):
                entries.append((used, name))
            elif name.startswith(".config-") and used < now - LEFT_BEHIND_NS:
                os.unlink(name, dir_fd=folder)
    for _, old in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(old, dir_fd=folder)


def _racy(mtime_ns: int | None) -> bool:
    """Whether a file changed so recently that a change in the same tick of the file
    system's clock would look the same (git's "racily clean" entries)."""
    return mtime_ns is not None and mtime_ns >= time.time_ns() - RACY_NS


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except (OSError, ValueError):
        return None


def _compose_key(file: Path) -> production_settings.ComposeKey | None:
    try:
        return production_settings.ComposeKey.of(file)
    except OSError:
        return None


def _signature(path: Path) -> tuple[int, ...] | None:
    """A source file as it is: (size, modification time in ns); None when it is gone."""
    try:
        seen = path.stat()
    except OSError:
        return None
    return (seen.st_size, seen.st_mtime_ns)


def _code() -> list[Path]:
    """The source files of the sidekick modules loaded in this process."""
    found = []
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if (name == "sidekick" or name.startswith("sidekick.")) and source:
            found.append(Path(source))
    return sorted(found)


def _configured_paths(config: Config) -> Iterator[Path]:
    """Every path the configuration names."""
    from sidekick.config_loader import configured_paths

    for _key, path in configured_paths(config):
        yield path
