"""Each live release's own files and images, so a rollback to any kept release restores it.

A release's journal undoes that release alone, from what production ran just before it.
A chain of journals cannot bring back a release that was itself rolled back: the backup
of the release deployed after that rollback holds the older release's files. So, as
Kamal keeps every version's image, each release keeps a snapshot once it is live: the
content and mode of every file deploys manage (the workspace's files as production holds
them), the names of production's own files a deploy keeps (``deploy.delete`` off), and
the image each service runs, tagged so it outlives later builds. Contents are stored once,
by hash, in ``objects/``, shared by every snapshot. Production before its first deploy is
snapshotted too, as release r0.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidekick.production.files import FilePlan, content_hash
from sidekick.production.journal import copy_atomic, write_atomic

logger = logging.getLogger(__name__)

SNAPSHOT = "release.json"
OBJECTS = "objects"
# The Compose project is in the tag: two projects may build into one repository.
RELEASE_TAG = "sidekick-{project}-r{number}"


@dataclass
class Snapshot:
    number: int
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path: (sha256, mode)
    kept: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # built image reference: image id
    # Images the project pulls (redis:7): shared with other projects, so never tagged by
    # sidekick; a rollback checks the reference still names the same image.
    pulled: dict[str, str] = field(default_factory=dict)
    # When it last went live (epoch seconds): pruning keeps the most recently live ones.
    live_at: float = 0.0

    @property
    def name(self) -> str:
        return f"r{self.number}"

    @classmethod
    def read(cls, home: Path, number: int) -> Snapshot | None:
        path = home / f"r{number}" / SNAPSHOT
        try:
            return cls._parse(number, json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        # A damaged snapshot (cut short, edited, an older layout) counts as not kept.
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("snapshot %s is damaged, so not kept: %r", path, exc)
            return None

    @classmethod
    def _parse(cls, number: int, data: dict[str, Any]) -> Snapshot:
        files = {path: (str(digest), int(mode)) for path, (digest, mode) in data["files"].items()}
        live_at = float(data.get("live_at", 0.0))
        pulled = dict(data.get("pulled", {}))
        return cls(number, files, list(data["kept"]), dict(data["images"]), pulled, live_at)

    def write(self, home: Path) -> None:
        directory = home / self.name
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "files": self.files,
            "kept": self.kept,
            "images": self.images,
            "pulled": self.pulled,
            "live_at": self.live_at,
        }
        write_atomic(directory / SNAPSHOT, json.dumps(data, indent=1).encode())


def take(
    home: Path, number: int, production: Path, paths: Iterable[str], kept: Iterable[str]
) -> Snapshot:
    """The managed files as production holds them now (their contents stored by hash)."""
    snapshot = Snapshot(number, kept=sorted(kept))
    for path in sorted(set(paths)):
        source = production / path
        if source.is_file():
            snapshot.files[path] = (_store(home / OBJECTS, source), _mode(source))
    return snapshot


def _store(objects: Path, source: Path) -> str:
    digest = content_hash(source)
    if not (objects / digest).is_file():
        copy_atomic(source, objects / digest)
    return digest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def numbers(home: Path) -> list[int]:
    """The releases that keep a snapshot, newest first."""
    found = [p.parent.name[1:] for p in home.glob(f"r*/{SNAPSHOT}")]
    return sorted((int(n) for n in found if n.isdigit()), reverse=True)


def restore_plan(snapshot: Snapshot, production: Path, managed: set[str]) -> FilePlan:
    """What takes production's files back to the snapshot: its files written where they
    differ (content or mode), and the managed files it did not have deleted. Production's
    own files (neither managed nor in the snapshot) are left alone."""
    added, changed = [], []
    for path, (digest, mode) in sorted(snapshot.files.items()):
        current = production / path
        if not current.is_file():
            added.append(path)
        elif _mode(current) != mode or content_hash(current) != digest:
            changed.append(path)
    keep = set(snapshot.files) | set(snapshot.kept)
    deleted = sorted(p for p in managed - keep if (production / p).is_file())
    return FilePlan(tuple(added), tuple(changed), tuple(deleted), (), "")


def apply_snapshot(home: Path, snapshot: Snapshot, production: Path, plan: FilePlan) -> None:
    for path in plan.copied():
        digest, mode = snapshot.files[path]
        copy_atomic(home / OBJECTS / digest, production / path)
        os.chmod(production / path, mode)
    for path in plan.deleted:
        (production / path).unlink(missing_ok=True)


def kept(home: Path) -> list[Snapshot]:
    """Every snapshot still kept, newest first."""
    return [s for s in (Snapshot.read(home, n) for n in numbers(home)) if s is not None]


def managed(home: Path) -> set[str]:
    """Every file a kept release holds: what a deploy may have put into production."""
    return {path for snapshot in kept(home) for path in snapshot.files}


def surplus(snapshots: Iterable[Snapshot], protected: set[int], keep: int) -> list[int]:
    """The releases past the ``keep`` to keep: the protected ones (the live release and the
    one a rollback goes back to) always stay; the rest rank by when they were last live,
    not by number, since a rollback makes an older release live again."""
    ranked = sorted(snapshots, key=lambda s: (s.number not in protected, -s.live_at, -s.number))
    return [s.number for s in ranked[max(keep, len(protected)) :]]


def drop(home: Path, number: int) -> None:
    (home / f"r{number}" / SNAPSHOT).unlink(missing_ok=True)
    remove_if_empty(home / f"r{number}")


def remove_if_empty(directory: Path) -> None:
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()


def collect(home: Path) -> None:
    """Remove the stored contents no kept snapshot refers to."""
    used = {digest for snapshot in kept(home) for digest, _ in snapshot.files.values()}
    objects = home / OBJECTS
    for stored in objects.iterdir() if objects.is_dir() else ():
        if stored.name not in used and stored.is_file():
            stored.unlink(missing_ok=True)
