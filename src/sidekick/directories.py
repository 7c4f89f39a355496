"""Rows whose code would land in one directory under ``projects_root``.

A project named in neither the config's ``projects`` nor a Directory cell works
in ``projects_root/<its readable name>``. Two names that read the same
(``Foo Bar`` and ``foo-bar``) would share that directory, and their agents would
edit each other's code, unless one has a directory named after its key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sidekick.config import Config
from sidekick.models import Project, readable_slug, slugify


def shared_root_directories(config: Config, projects: Iterable[Project]) -> dict[str, list[str]]:
    """Project name → the other rows whose projects_root directory is the same as its own.

    Only names that read the same are resolved, so a long list costs no file
    system call for the rest.
    """
    if config.projects_root is None:
        return {}
    by_readable: dict[str, list[Project]] = {}
    for project in projects:
        if project.name not in config.projects and not project.directory:
            by_readable.setdefault(readable_slug(project.name), []).append(project)
    shared: dict[str, list[str]] = {}
    for group in by_readable.values():
        if len(group) > 1:
            shared.update(_sharing(config, group))
    return shared


def _sharing(config: Config, group: list[Project]) -> dict[str, list[str]]:
    by_directory: dict[Path | None, list[str]] = {}
    for project in group:
        by_directory.setdefault(config.project_directory(project.name), []).append(project.name)
    return {
        name: [other for other in names if other != name]
        for names in by_directory.values()
        if len(names) > 1
        for name in names
    }


def shared_directory_problem(config: Config, name: str, others: list[str]) -> str:
    """What to do about a directory the row would share, naming the other rows."""
    directory = config.project_directory(name)
    root = config.projects_root
    own = root / slugify(name) if root is not None else directory
    names = ", ".join(repr(other) for other in others)
    return (
        f"its directory {directory} would also be {names}'s (names that read the same);"
        f" make {own} for it, or give it a Directory"
    )
