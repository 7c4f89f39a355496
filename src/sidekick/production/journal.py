"""A release's journal and backup: enough to undo its file changes and image moves.

Written (and fsynced) before production changes, so a deploy killed at any
point can be undone by the next command: every production file it overwrites
or deletes is copied into the backup first, the files it adds are listed, and
the images the services ran before are recorded by id.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sidekick.production.files import FilePlan

JOURNAL = "journal.json"
BACKUP = "backup"


@dataclass
class Journal:
    release: int
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> Journal | None:
        try:
            data = json.loads((directory / JOURNAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(**data)

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / JOURNAL, json.dumps(asdict(self), indent=1).encode())


def back_up(directory: Path, production: Path, plan: FilePlan, release: int) -> Journal:
    """Copy what the plan overwrites or deletes, then write the journal."""
    journal = Journal(release, list(plan.added), [*plan.changed, *plan.deleted])
    for path in journal.replaced:
        target = directory / BACKUP / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(production / path, target)
    journal.write(directory)
    return journal


def discard(directory: Path) -> bool:
    """Drop a finished release's journal and backup; True when there was one."""
    had = (directory / JOURNAL).exists() or (directory / BACKUP).exists()
    shutil.rmtree(directory / BACKUP, ignore_errors=True)
    (directory / JOURNAL).unlink(missing_ok=True)
    return had


def apply_files(workspace: Path, production: Path, plan: FilePlan) -> None:
    for path in plan.copied():
        copy_atomic(workspace / path, production / path)
    for path in plan.deleted:
        (production / path).unlink(missing_ok=True)


def restore_files(directory: Path, production: Path, journal: Journal) -> None:
    """Production's files as they were before the release, byte for byte."""
    for path in journal.added:
        (production / path).unlink(missing_ok=True)
    for path in journal.replaced:
        copy_atomic(directory / BACKUP / path, production / path)


def copy_atomic(source: Path, target: Path) -> None:
    """Written to a temp file beside the target and renamed over it, mode kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as data:
            shutil.copyfileobj(data, out)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(source, temp)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
