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

An entry is used only while all of these are as they were when it was written, else the
configuration is loaded in full (and the entry written again):

- the config file's bytes, its resolved path and its directory's (relative paths resolve
  against it), the ``SIDEKICK_`` environment, ``HOME`` (``~`` in paths);
- what kind of thing every configured path is (a file, a directory, missing): the checks
  of a load ask no more of them (the Sheets credentials, the API key file, the
  production directories);
- every compose file the load read (inode, size, modification time), whose name and
  services it then serves without parsing (:func:`sidekick.production.settings.read_compose`);
  no entry is written while one of them changed in the last 2 s, as git does not trust an
  index entry as new as the index ("racily clean"): a second change in the same tick of
  the file system's clock, of the same size, would look the same;
- the source of every sidekick module that was loaded when the entry was written (size
  and modification time): new code may read the configuration differently.

Only a load that succeeded is kept, so a look never takes a configuration that a full load
would refuse on the same inputs. Entries live in ``$XDG_CACHE_HOME/sidekick`` (else
``~/.cache/sidekick``), one per config file, readable by their owner alone; an entry
owned by someone else or writable by others is ignored, as is a cache directory that
cannot be written. At most :data:`KEEP` entries are kept, the oldest removed first.
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
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from sidekick.config_file import ENV_PREFIX, config_path
from sidekick.production import settings as production_settings

if TYPE_CHECKING:
    from sidekick.config import Config

FORMAT = 1
KEEP = 32
# File systems stamp a change with a clock that ticks every few milliseconds (the kernel's
# coarse clock); a margin of seconds also covers file systems that keep whole seconds.
RACY_NS = 2_000_000_000
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir"}


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
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return Path(base) / "sidekick"


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
    where = os.fsencode(f"{view.__module__}.{view.__qualname__}:{file.absolute()}")
    entry = cache_dir() / f"config-{zlib.crc32(where):08x}.pickle"
    inputs = {**_inputs(file, text), "view": f"{view.__module__}.{view.__qualname__}"}
    kept = _read(entry)
    if kept is not None and kept.get("inputs") == inputs and _still(kept):
        production_settings.remember_compose_reads(kept["compose"])
        if isinstance(kept["view"], view):
            return kept["view"]
    config = _load(path)
    made = view.of(config)
    paths = [*_paths(config), *view.decided_by(config)]
    _write(
        entry, inputs, made, paths, production_settings.compose_reads(config.production.values())
    )
    return made


def _load(path: str | Path | None) -> Config:
    from sidekick.config import load_config

    return load_config(path)


def _inputs(file: Path, text: bytes) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "python": sys.version,
        "file": str(file.absolute()),
        "resolved": str(file.resolve()),
        "base": str(file.parent.resolve()),
        "text": text,
        "environ": sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)),
        "home": os.environ.get("HOME", ""),
    }


def _still(kept: dict[str, Any]) -> bool:
    """Whether what the entry was made from besides its inputs is as it was."""
    if any(_kind(Path(p)) != kind for p, kind in kept["paths"]):
        return False
    if any(_signature(Path(p)) != seen for p, seen in kept["code"]):
        return False
    return all(_signature(key[0], inode=True) == key[1:] for key, _ in kept["compose"])


def _write(
    entry: Path,
    inputs: dict[str, Any],
    made: View,
    paths: list[Path],
    compose: list[production_settings.ComposeRead],
) -> None:
    import tempfile

    if any(_racy(key[3]) for key, _ in compose):
        return
    kept = {
        "inputs": inputs,
        "view": made,
        "paths": [(str(p), _kind(p)) for p in paths],
        "code": [(str(p), _signature(p)) for p in _code()],
        "compose": compose,
    }
    with contextlib.suppress(OSError, pickle.PicklingError):
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=entry.name, suffix=".tmp", dir=entry.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(kept, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _prune(entry.parent)


def _racy(mtime_ns: int) -> bool:
    """Whether a file changed so recently that a change in the same tick of the file
    system's clock, of the same size, would look the same (git's "racily clean" entries):
    its read is not kept."""
    return mtime_ns >= time.time_ns() - RACY_NS


def _read(entry: Path) -> dict[str, Any] | None:
    """The entry, if it is this user's own and nobody else may write it."""
    try:
        with open(entry, "rb") as handle:
            seen = os.fstat(handle.fileno())
            if seen.st_uid != os.geteuid() or seen.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            kept = pickle.load(handle)  # noqa: S301 - this user's own file, checked above
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None  # missing, damaged, or written by code whose classes are gone
    return kept if isinstance(kept, dict) else None


def _prune(directory: Path) -> None:
    entries = sorted(directory.glob("config-*.pickle"), key=_age, reverse=True)
    for old in entries[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _kind(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return _KINDS.get(stat.S_IFMT(mode), "other")


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
    """Every path the configuration names: the checks of a load look at no others."""
    from sidekick.config_loader import configured_paths

    for _key, path in configured_paths(config):
        yield path
