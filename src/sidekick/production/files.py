"""What a deploy copies: the workspace's files against the production directory's.

Computed here, never by parsing another tool's output. A git workspace lists its
files through git itself (tracked plus untracked, git's own ignore rules applied);
any other workspace, and the production directory, are walked with the same rules
read from the workspace (see ``Rules``). ``.env`` files are production's own: never
copied, never deleted, never shown with their contents.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import PatternMatcher
from pathspec import GitIgnoreSpec

ALWAYS_EXCLUDED = (".git", ".env", ".env.*")
# As docker-py's exclude_paths: the build needs its Dockerfile whatever .dockerignore says.
DOCKER_KEPT = ("!Dockerfile",)
GIT_TIMEOUT = 60.0
_BLOCK = 1 << 20


@dataclass(frozen=True)
class FilePlan:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    manifest: str
    # Every workspace file the deploy manages, unchanged ones included (what a release holds).
    deployed: tuple[str, ...] = ()

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
    rules = Rules(workspace, exclude)
    source = {p: workspace / p for p in workspace_files(workspace, rules)}
    # A deployed file is compared even where the rules would skip it (a file git
    # tracks although a .gitignore names it), so a second plan finds it unchanged.
    walked = set(_walk(production, rules)) | {p for p in source if (production / p).is_file()}
    target = {p: production / p for p in walked}
    added = sorted(source.keys() - target.keys())
    changed = sorted(p for p in source.keys() & target.keys() if _differs(source[p], target[p]))
    gone = sorted(target.keys() - source.keys())
    return FilePlan(
        tuple(added),
        tuple(changed),
        tuple(gone) if delete else (),
        () if delete else tuple(gone),
        manifest(workspace, sorted(source)),
        tuple(sorted(source)),
    )


def workspace_files(workspace: Path, rules: Rules) -> list[str]:
    listed = _git_files(workspace)
    if listed is None:
        paths: Iterable[str] = _walk(workspace, rules)
    else:
        # git has applied its own ignore rules (and keeps the files it tracks).
        paths = (p for p in listed if not rules.excluded(p, gitignore=False))
    return sorted(p for p in paths if (workspace / p).is_file())


Lookup = Callable[[str], GitIgnoreSpec | None]


class Rules:
    """Which paths a deploy leaves alone, read from the workspace.

    - ``.git`` and ``.env`` files, always (no configured negation brings them back);
    - the workspace's ``.dockerignore`` as Docker reads it, through docker-py's own
      matcher: patterns anchored at the root, ``**`` for any depth, ``!`` exceptions
      (they re-include a file under an excluded directory), the last match winning,
      the Dockerfile and ``.dockerignore`` kept. Like docker-py it ignores case.
    - every ``.gitignore`` as git reads it (pathspec's GitIgnoreSpec): each applies to
      its own directory's subtree, a deeper one overrides, and nothing under an ignored
      directory comes back;
    - the configured ``exclude`` patterns, in ``.gitignore`` syntax from the root.
    """

    def __init__(self, workspace: Path, exclude: Iterable[str]) -> None:
        self.workspace = workspace
        # Two specs: a configured negation must not bring back what is always excluded.
        self._at_root = (_spec(ALWAYS_EXCLUDED), _spec(exclude))
        self._docker = PatternMatcher([*_dockerignore(workspace), *DOCKER_KEPT])
        self._gitignores: dict[str, GitIgnoreSpec | None] = {}
        # Every file of a directory asks about it: each is decided once.
        self._directories: dict[tuple[str, bool], bool] = {}

    def excluded(self, path: str, *, directory: bool = False, gitignore: bool = True) -> bool:
        parent = path.rpartition("/")[0]
        return (
            self._docker_excludes(path, directory)
            or (bool(parent) and self._ignored_directory(parent, gitignore))
            or self._decides(path, directory, gitignore)
        )

    def _ignored_directory(self, directory: str, gitignore: bool) -> bool:
        """As git reads ignore files: nothing under an ignored directory comes back."""
        key = (directory, gitignore)
        if key not in self._directories:
            parent = directory.rpartition("/")[0]
            self._directories[key] = (
                bool(parent) and self._ignored_directory(parent, gitignore)
            ) or self._decides(directory, True, gitignore)
        return self._directories[key]

    def _decides(self, path: str, directory: bool, gitignore: bool) -> bool:
        """The path itself is ignored by the root's patterns or by a .gitignore."""
        name = path + "/" if directory else path
        return any(spec.match_file(name) for spec in self._at_root) or (
            gitignore and _gitignored(path, directory, self._gitignore)
        )

    def _docker_excludes(self, path: str, directory: bool) -> bool:
        # The stub says PathLike, but the matcher takes the str it splits and joins.
        if not self._docker.matches(path):  # type: ignore[arg-type]
            return False
        # As docker-py's walk: a directory stays open while an exception names a path in it.
        return not directory or not any(
            p.exclusion and p.cleaned_pattern.startswith(path + "/") for p in self._docker.patterns
        )

    def _gitignore(self, directory: str) -> GitIgnoreSpec | None:
        if directory not in self._gitignores:
            ignore = self.workspace / directory / ".gitignore"
            lines = _lines(ignore) if ignore.is_file() else None
            self._gitignores[directory] = None if lines is None else _spec(lines)
        return self._gitignores[directory]


def _gitignored(path: str, directory: bool, lookup: Lookup) -> bool:
    """The deepest .gitignore with a pattern matching the path decides."""
    parts = path.split("/")
    for depth in range(len(parts) - 1, -1, -1):
        spec = lookup("/".join(parts[:depth]))
        if spec is None:
            continue
        relative = "/".join(parts[depth:]) + ("/" if directory else "")
        include = spec.check_file(relative).include
        if include is not None:
            return include
    return False


def _spec(lines: Iterable[str]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(list(lines))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()


def _dockerignore(workspace: Path) -> list[str]:
    """Its patterns as docker-py reads them: stripped, blank lines and comments dropped."""
    ignore = workspace / ".dockerignore"
    lines = _lines(ignore) if ignore.is_file() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def manifest(workspace: Path, paths: list[str]) -> str:
    """One hash of every deployed file's path and content."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + content_hash(workspace / path).encode() + b"\n")
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


def _walk(root: Path, rules: Rules) -> Iterator[str]:
    for directory, subdirs, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        subdirs[:] = [
            d for d in subdirs if not rules.excluded((relative / d).as_posix(), directory=True)
        ]
        for name in files:
            path = (relative / name).as_posix()
            if not rules.excluded(path):
                yield path


def _differs(one: Path, other: Path) -> bool:
    if one.stat().st_size != other.stat().st_size:
        return True
    return content_hash(one) != content_hash(other)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
