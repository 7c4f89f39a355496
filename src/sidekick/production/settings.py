"""The ``production`` block of a ``projects:`` entry, and the rules that span its keys.

A ``projects:`` entry is a path (as before) or a mapping with ``directory`` and
``production``; :func:`split_projects` turns the mapping form back into the path
form before the generic loader runs, so every other reader of ``projects`` is
unchanged, and hands the production blocks to the loader under their own keys
(``projects.NAME.production.path``), so an error names the key as the person wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
AUTO_MODES = ("off", "on_complete")
_ENTRY_KEYS = frozenset({"directory", "production"})
_NOT_IN_PROJECT_NAME = re.compile(r"[^-_a-z0-9]")

Fail = Callable[[str, str], Exception]


class SmokeCheck(NamedTuple):
    """An HTTP URL that must answer 2xx, or a command run in a service that must exit 0."""

    url: str | None = None
    service: str | None = None
    command: tuple[str, ...] = ()
    timeout: float = 10.0

    def describe(self) -> str:
        if self.url:
            return f"GET {self.url}"
        return f"{self.service}: {' '.join(self.command)}"


class DeployConfig(NamedTuple):
    exclude: tuple[str, ...] = ()
    delete: bool = False
    build: bool = True
    wait_timeout: float = 120.0
    smoke: tuple[SmokeCheck, ...] = ()
    keep: int = 5
    require_clean: bool = True
    auto: str = "off"
    gate: tuple[str, ...] = ()


class ProductionConfig(NamedTuple):
    """A project's ``production`` block. (This and the two above are tuples: a look defines
    no dataclass; see sidekick.production.view.)"""

    path: Path | None = None
    compose_file: str | None = None
    compose_project: str | None = None
    services: tuple[str, ...] = ()
    primary: str | None = None
    containers: tuple[str, ...] = ()
    deploy: DeployConfig = DeployConfig()

    @property
    def uses_compose(self) -> bool:
        return self.path is not None


class ComposeProject(NamedTuple):
    """What the production directory's compose file says: its name, file and services. (A
    tuple: a look defines no dataclass; see sidekick.production.view.)"""

    name: str
    file: Path
    services: tuple[str, ...]


def split_projects(raw: dict[str, Any], fail: Fail) -> dict[str, Any]:
    """Replace mapping entries of ``projects`` by their directory; return the production blocks."""
    if "production" in raw:
        raise fail("production", "a production block belongs inside its projects: entry")
    projects = raw.get("projects")
    if not isinstance(projects, dict):
        return {}
    blocks: dict[str, Any] = {}
    for name, entry in list(projects.items()):
        if not isinstance(entry, dict):
            continue
        key = f"projects.{name}"
        for unknown in sorted(set(entry) - _ENTRY_KEYS):
            raise fail(f"{key}.{unknown}", f"unknown key (known: {sorted(_ENTRY_KEYS)})")
        if entry.get("production") is not None:
            blocks[str(name)] = entry["production"]
        if entry.get("directory") is None:
            del projects[name]
        else:
            projects[name] = entry["directory"]
    return blocks


def compose_file(directory: Path, chosen: str | None = None) -> Path | None:
    """The compose file Compose itself would pick in the directory (or the chosen one)."""
    if chosen:
        path = directory / chosen
        return path if path.is_file() else None
    return next((p for p in map(directory.joinpath, COMPOSE_FILE_NAMES) if p.is_file()), None)


def default_project_name(directory: Path, declared: str | None = None) -> str:
    """The name Compose gives the project: the file's ``name:``, else the directory's."""
    text = declared or directory.resolve().name
    return _NOT_IN_PROJECT_NAME.sub("", text.lower()).lstrip("-_")


READ_CACHE = 64


class ComposeKey(NamedTuple):
    """A compose file as it was when read: while these stay, so does what it says."""

    file: Path
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, file: Path) -> ComposeKey:
        """Raises OSError when the file cannot be seen."""
        seen = file.stat()
        return cls(file, seen.st_ino, seen.st_size, seen.st_mtime_ns)


# What a compose file says: its declared name (None: none) and its services.
ComposeFound = tuple[str | None, tuple[str, ...]]
ComposeRead = tuple[ComposeKey, ComposeFound]
_read: dict[ComposeKey, ComposeFound] = {}


def compose_reads(blocks: Iterable[ProductionConfig]) -> list[ComposeRead]:
    """The compose file of each of these blocks as :func:`read_compose` reads it: ((file,
    inode, size, modification time in ns), (declared name, services)) each, for
    :mod:`sidekick.config_cache` to keep. Raises ValueError for a file that cannot be read."""
    reads = []
    for settings in blocks:
        file = compose_file(settings.path, settings.compose_file) if settings.path else None
        if file is not None:
            reads.append(_read_keyed(file))
    return reads


def compose_candidates(settings: ProductionConfig) -> list[Path]:
    """Every file whose presence decides which compose file the block uses."""
    if settings.path is None:
        return []
    names = (settings.compose_file,) if settings.compose_file else COMPOSE_FILE_NAMES
    return [settings.path / name for name in names]


def remember_compose_reads(reads: list[ComposeRead]) -> None:
    """Take reads kept by another process; each serves only while its file is unchanged."""
    _read.update(reads)


def read_compose(file: Path) -> tuple[str | None, tuple[str, ...]]:
    """The compose file's declared name and its services; raises ValueError if unreadable.

    One command asks several times (validation, targets, status); the file is parsed once
    for as long as it stays the same file (inode, size and modification time). PyYAML is
    imported only to parse one: a look served by :mod:`sidekick.config_cache` brings these
    answers with it and parses no compose file."""
    return _read_keyed(file)[1]


def _read_keyed(file: Path) -> ComposeRead:
    """What :func:`read_compose` gives, with the key (the file as it was) it was read under."""
    try:
        key = ComposeKey.of(file)
    except OSError as exc:
        raise ValueError(f"cannot read {file}: {exc}") from None
    found = _read.get(key)
    if found is None:
        found = _parse_compose(file)
        if len(_read) >= READ_CACHE:
            _read.clear()
        _read[key] = found
    return key, found


def _parse_compose(file: Path) -> tuple[str | None, tuple[str, ...]]:
    import yaml

    from sidekick.config_yaml import UnclearValue, parse

    try:
        return _services(file, parse(file.read_text(encoding="utf-8"))[0])
    except (OSError, yaml.YAMLError, UnclearValue) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from None


def _services(file: Path, data: Any) -> tuple[str | None, tuple[str, ...]]:
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError(f"{file} has no services: mapping")
    name = data.get("name")
    return (str(name) if name else None), tuple(str(s) for s in data["services"])


def read_compose_builds(file: Path) -> dict[str, str]:
    """The services the compose file builds, with their build context (relative to it)."""
    from sidekick.config_yaml import parse

    data = parse(file.read_text(encoding="utf-8"))[0]
    builds = {}
    for name, service in (data.get("services") or {}).items():
        build = service.get("build") if isinstance(service, dict) else None
        if isinstance(build, str):
            builds[str(name)] = build
        elif isinstance(build, dict):
            builds[str(name)] = str(build.get("context", "."))
    return builds


def compose_project(settings: ProductionConfig) -> ComposeProject | None:
    """The Compose project the block points at; None for named containers only."""
    if settings.path is None:
        return None
    file = compose_file(settings.path, settings.compose_file)
    if file is None:
        raise ValueError(f"no compose file in {settings.path}")
    declared, services = read_compose(file)
    name = settings.compose_project or default_project_name(settings.path, declared)
    return ComposeProject(name, file, services)


def check_production(
    name: str, settings: ProductionConfig, workspace: Path | None, fail: Fail
) -> None:
    """Rules across the block's keys: raise ``fail(key, problem)`` for the first broken one."""
    key = f"projects.{name}.production"
    if settings.path is None and not settings.containers:
        raise fail(f"{key}.path", "required: the production directory (or containers: names)")
    if settings.path is not None:
        _check_path(key, settings.path, workspace, fail)
        _check_compose(key, settings, fail)
    _check_deploy(f"{key}.deploy", settings.deploy, fail)


def _check_path(key: str, path: Path, workspace: Path | None, fail: Fail) -> None:
    if not path.is_dir():
        raise fail(f"{key}.path", f"directory does not exist: {path}")
    if workspace is None:
        return
    here, there = path.resolve(), workspace.resolve()
    if here == there or here.is_relative_to(there):
        raise fail(f"{key}.path", f"{path} is inside the project's workspace {workspace}")
    if there.is_relative_to(here):
        raise fail(f"{key}.path", f"the project's workspace {workspace} is inside {path}")


def _check_compose(key: str, settings: ProductionConfig, fail: Fail) -> None:
    try:
        project = compose_project(settings)
    except ValueError as exc:
        where = f"{key}.compose_file" if settings.compose_file else f"{key}.path"
        raise fail(where, str(exc)) from None
    assert project is not None
    named = [(f"{key}.services[{i}]", s) for i, s in enumerate(settings.services)]
    if settings.primary:
        named.append((f"{key}.primary", settings.primary))
    named += [
        (f"{key}.deploy.smoke[{i}].service", c.service or "") for i, c in _service_checks(settings)
    ]
    for where, service in named:
        if service not in project.services:
            known = ", ".join(project.services)
            raise fail(where, f"unknown service {service!r} in {project.file} (known: {known})")


def _service_checks(settings: ProductionConfig) -> list[tuple[int, SmokeCheck]]:
    return [(i, c) for i, c in enumerate(settings.deploy.smoke) if c.service]


def _check_deploy(key: str, deploy: DeployConfig, fail: Fail) -> None:
    if deploy.auto not in AUTO_MODES:
        raise fail(f"{key}.auto", f"must be one of {', '.join(AUTO_MODES)}, got {deploy.auto!r}")
    if deploy.auto == "on_complete" and not deploy.gate:
        raise fail(f"{key}.gate", "required with auto: on_complete (the command that tests)")
    # The live release and the one a rollback goes back to: fewer allows no rollback.
    if deploy.keep < 2:
        raise fail(f"{key}.keep", "must be at least 2 (the live release and the one before it)")
    if deploy.wait_timeout <= 0:
        raise fail(f"{key}.wait_timeout", "must be more than 0 seconds")
    for index, check in enumerate(deploy.smoke):
        if bool(check.url) == bool(check.command):
            raise fail(f"{key}.smoke[{index}]", "needs either url or service and command")
        if check.url and not check.url.startswith(("http://", "https://")):
            raise fail(f"{key}.smoke[{index}].url", "must start with http:// or https://")
        if check.command and not check.service:
            raise fail(f"{key}.smoke[{index}].service", "required with command")
