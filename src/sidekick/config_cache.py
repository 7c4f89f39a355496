"""The configuration of a command that only looks, kept between its runs while its inputs stay.

Why: ``sidekick prod status`` and ``prod logs`` are the commands a person runs most, and
they are measured against ``docker compose ps`` and ``docker logs`` (bench/bench_prod.py,
target <= 1.5x each). A full :func:`~sidekick.config.load_config` costs such a run
PyYAML's import, the parse of config.yaml and of every production compose file, and the
import of every section's class with what those need. Measured on the 2-core CI machine
(medians of 15 runs, two runs each): ``prod status`` of a 10-container project took
126-134 ms with a full load and 90-93 ms served a kept view; ``prod logs --tail 10000``
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
  (:func:`sidekick.production.settings.read_compose`); no entry is written while one of
  them changed in the last 2 s, as git does not trust an index entry as new as the index
  ("racily clean"): a second change in the same tick of the file system's clock, of the
  same size, would look the same.

Not followed: what else a check asks of the system (the length limits of a file system,
the user database behind ``~user``). Only a load that succeeded is kept.

Entries live in ``$XDG_CACHE_HOME/sidekick`` (else ``~/.cache/sidekick``; a relative
``XDG_CACHE_HOME`` is ignored, as the XDG base directory specification says), one per
config file and installation. An entry is unpickled, as Python runs its own ``.pyc``
files, only from a directory that is this user's and writable by no one else, opened
without following links, and only if it is a regular file of this user's, with one link,
writable by no one else; the inputs above are a first pickle of plain data, compared
before the view is loaded. A cache that cannot be used or written costs a full load, never
the command. At most :data:`KEEP` entries are kept, the oldest removed first.
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
from typing import IO, TYPE_CHECKING, Any, Protocol, Self, TypeVar

import sidekick
from sidekick.config_file import ENV_PREFIX, config_path
from sidekick.production import settings as production_settings

if TYPE_CHECKING:
    from sidekick.config import Config

FORMAT = 2
KEEP = 32
# File systems stamp a change with a clock that ticks every few milliseconds (the kernel's
# coarse clock); a margin of seconds also covers file systems that keep whole seconds.
RACY_NS = 2_000_000_000
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


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/sidekick``, else ``~/.cache/sidekick`` (the XDG base directories)."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(chosen):
        home = environ.get("HOME") or os.path.expanduser("~")
        chosen = os.path.join(home, ".cache")
    return Path(chosen) / "sidekick"


def load_view(view: type[V], path: str | Path | None = None) -> V:
    """The view of the configuration :func:`~sidekick.config.load_config` would load now;
    raises what it raises. Without a config file (defaults only) nothing is kept."""
    file = config_path(path)
    if file is None:
        return view.of(_load(path))
    try:
        text = file.read_bytes()
    except OSError:
        return view.of(_load(path))  # which says what is wrong with the file
    inputs = _inputs(file, text, f"{view.__module__}.{view.__qualname__}")
    named = repr((inputs["install"], inputs["view"], inputs["file"])).encode()
    directory, name = cache_dir(), f"config-{zlib.crc32(named):08x}.pickle"
    kept = _kept(directory, name, inputs)
    if isinstance(kept, view):
        return kept
    config = _load(path)
    made = view.of(config)
    try:
        compose = production_settings.compose_reads(config.production.values())
    except ValueError:
        return made  # a compose file changed since the load read it: nothing to keep
    if not any(_racy(key[3]) for key, _ in compose):
        header = {
            "inputs": inputs,
            "paths": [_where(p) for p in [*_paths(config), *view.decided_by(config)]],
            "code": [(str(p), _signature(p)) for p in _code()],
            "compose": compose,
        }
        _write(directory, name, header, made)
    return made


def _load(path: str | Path | None) -> Config:
    from sidekick.config import load_config

    return load_config(path)


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


def _kept(directory: Path, name: str, inputs: dict[str, Any]) -> object | None:
    """The entry's view, if the entry is this user's own and was made from what is here now."""
    try:
        with _open_own(directory, name) as handle:
            header = pickle.load(handle)  # noqa: S301 - this user's own file, checked above
            if header.get("inputs") != inputs or not _still(header):
                return None
            production_settings.remember_compose_reads(header["compose"])
            view: object = pickle.load(handle)  # noqa: S301
            return view
    except Exception:  # missing, foreign, damaged, or pickled by other code: a full load
        return None


def _still(header: dict[str, Any]) -> bool:
    """Whether what the entry was made from besides its inputs is as it was."""
    if any(_where(Path(p)) != (p, kind, resolved) for p, kind, resolved in header["paths"]):
        return False
    if any(_signature(Path(p)) != seen for p, seen in header["code"]):
        return False
    return all(_signature(key[0], inode=True) == key[1:] for key, _ in header["compose"])


def _open_own(directory: Path, name: str) -> IO[bytes]:
    """The entry opened for reading; PermissionError unless the directory and the file are
    this user's, writable by no one else, reached without following a link."""
    folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if not _private(os.fstat(folder)):
            raise PermissionError(f"{directory} is not this user's alone")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    finally:
        os.close(folder)
    seen = os.fstat(fd)
    if not (stat.S_ISREG(seen.st_mode) and seen.st_nlink == 1 and _private(seen)):
        os.close(fd)
        raise PermissionError(f"{directory / name} is not this user's alone")
    return os.fdopen(fd, "rb")


def _private(seen: os.stat_result) -> bool:
    return seen.st_uid == os.geteuid() and not seen.st_mode & _SHARED


def _write(directory: Path, name: str, header: dict[str, Any], made: object) -> None:
    """Write the entry in place of the old one (a new file renamed over it), or nothing."""
    with contextlib.suppress(Exception):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            if not _private(os.fstat(folder)):
                return
            temp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(temp, flags, 0o600, dir_fd=folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.dump(made, out, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder)
                raise
            _prune(folder)
        finally:
            os.close(folder)


def _prune(folder: int) -> None:
    """The :data:`KEEP` newest entries stay."""
    entries = []
    for name in os.listdir(folder):
        if name.startswith("config-") and name.endswith(".pickle"):
            with contextlib.suppress(OSError):
                entries.append((os.stat(name, dir_fd=folder).st_mtime_ns, name))
    for _, old in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(old, dir_fd=folder)


def _racy(mtime_ns: int) -> bool:
    """Whether a file changed so recently that a change in the same tick of the file
    system's clock, of the same size, would look the same (git's "racily clean" entries)."""
    return mtime_ns >= time.time_ns() - RACY_NS


def _where(path: Path) -> tuple[str, str | None, str]:
    """A path, what kind of thing is there (None: nothing), and where it resolves to."""
    try:
        mode: int | None = path.stat().st_mode
    except OSError:
        mode = None
    kind = None if mode is None else _KINDS.get(stat.S_IFMT(mode), "other")
    try:
        resolved = str(path.resolve())
    except OSError:
        resolved = ""
    return str(path), kind, resolved


def _signature(path: Path, *, inode: bool = False) -> tuple[int, ...] | None:
    try:
        seen = path.stat()
    except OSError:
        return None
    if inode:
        return (seen.st_ino, seen.st_size, seen.st_mtime_ns)
    return (seen.st_size, seen.st_mtime_ns)


def _code() -> list[Path]:
    """The source files of the sidekick modules loaded in this process."""
    found = []
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if (name == "sidekick" or name.startswith("sidekick.")) and source:
            found.append(Path(source))
    return sorted(found)


def _paths(config: Config) -> Iterator[Path]:
    """Every path the configuration names."""
    from sidekick.config_loader import configured_paths

    for _key, path in configured_paths(config):
        yield path
