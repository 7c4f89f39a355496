"""What a deploy copies: the workspace's files against the production directory's.

Computed here, never by parsing another tool's output. A git workspace lists its
files through git itself (tracked plus untracked, ``.gitignore`` applied); any
workspace also skips ``.git``, its ``.dockerignore`` patterns and the configured
``exclude`` patterns. ``.env`` files are production's own: never copied, never
deleted, never shown with their contents.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ALWAYS_EXCLUDED = (".git", ".env", ".env.*")
GIT_TIMEOUT = 60.0
_BLOCK = 1 << 20


@dataclass(frozen=True)
class FilePlan:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    manifest: str

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)

    def copied(self) -> tuple[str, ...]:
        return self.added + self.changed


def plan_files(
    workspace: Path, production: Path, exclude: Iterable[str], *, delete: bool
) -> FilePlan:
    patterns = _patterns(workspace, exclude)
    source = {p: workspace / p for p in workspace_files(workspace, patterns)}
    target = {p: production / p for p in _walk(production, patterns)}
    added = sorted(source.keys() - target.keys())
    changed = sorted(p for p in source.keys() & target.keys() if _differs(source[p], target[p]))
    gone = sorted(target.keys() - source.keys())
    return FilePlan(
        tuple(added),
        tuple(changed),
        tuple(gone) if delete else (),
        () if delete else tuple(gone),
        manifest(workspace, sorted(source)),
    )


def workspace_files(workspace: Path, patterns: tuple[str, ...]) -> list[str]:
    listed = _git_files(workspace)
    paths = listed if listed is not None else _walk(workspace, patterns)
    return sorted(p for p in paths if not excluded(p, patterns) and (workspace / p).is_file())


def excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """The path or one of its parent directories matches a pattern."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    names = list(parts)
    return any(
        fnmatch.fnmatchcase(candidate, pattern.strip("/"))
        for pattern in patterns
        for candidate in (*prefixes, *names)
    )


def manifest(workspace: Path, paths: list[str]) -> str:
    """One hash of every deployed file's path and content."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + _hash(workspace / path).encode() + b"\n")
    return digest.hexdigest()


def git_commit(workspace: Path) -> str:
    result = _git(workspace, "rev-parse", "HEAD")
    return result.stdout.strip() if result and result.returncode == 0 else ""


def dirty(workspace: Path) -> list[str]:
    """Uncommitted changes of a git workspace (empty when clean or not a repository)."""
    result = _git(workspace, "status", "--porcelain", "-z")
    if result is None or result.returncode != 0:
        return []
    return [entry[3:] for entry in result.stdout.split("\0") if entry]


def is_git(workspace: Path) -> bool:
    return (workspace / ".git").exists()


def _patterns(workspace: Path, exclude: Iterable[str]) -> tuple[str, ...]:
    ignore = workspace / ".dockerignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    # Negations (!pattern) of .dockerignore are not followed: a file stays excluded.
    dockerignore = [line.strip() for line in lines if line.strip() and line[0] not in "#!"]
    return (*ALWAYS_EXCLUDED, *dockerignore, *exclude)


def _git_files(workspace: Path) -> list[str] | None:
    if not is_git(workspace):
        return None
    result = _git(workspace, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if result is None or result.returncode != 0:
        return None
    return [p for p in result.stdout.split("\0") if p]


def _git(workspace: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    if not is_git(workspace):
        return None
    return subprocess.run(
        ["git", "-C", str(workspace), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=GIT_TIMEOUT,
    )


def _walk(root: Path, patterns: tuple[str, ...]) -> Iterator[str]:
    for directory, subdirs, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        subdirs[:] = [d for d in subdirs if not excluded((relative / d).as_posix(), patterns)]
        for name in files:
            path = (relative / name).as_posix()
            if not excluded(path, patterns):
                yield path


def _differs(one: Path, other: Path) -> bool:
    if one.stat().st_size != other.stat().st_size:
        return True
    return _hash(one) != _hash(other)


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
