"""What a row needs before the daemon can start its agent, said alike by the daemon (on the
row) and by ``sidekick validate`` (before the daemon ever sees the list): a directory that
exists, and a Next Action to give the agent."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sidekick.config import Config
from sidekick.models import SESSION_PREFIX, Finding, Project, ProjectStatus
from sidekick.priorities.base import empty_next_actions

NO_DIRECTORY = (
    "no directory configured (add it under projects: in the config, a Directory column,"
    " or set projects_root)"
)
# Set only in the orchestrator image (see the Dockerfile's production stage).
IMAGE_ENV = "SIDEKICK_IMAGE_BUILT_WITH"
CONTAINER_PROJECTS = Path("/projects")


def absent_directory(directory: Path, environ: Mapping[str, str] | None = None) -> str:
    """Why a directory cannot be used; in the container, where the host's projects are."""
    problem = f"directory {directory} does not exist"
    if IMAGE_ENV not in (os.environ if environ is None else environ):
        return problem
    # A host path typed into the list means nothing in the container: say where they are.
    return (
        f"{problem} in the container: the projects directory (SIDEKICK_PROJECTS_DIR)"
        f" is mounted at {CONTAINER_PROJECTS}"
    )


def directory_problem(config: Config, project: Project) -> str | None:
    """Why the row's project has no directory to work in, or None."""
    directory = config.project_directory(project.name, project.directory)
    if directory is None:
        return NO_DIRECTORY
    if directory.is_dir():
        return None
    root = config.projects_root
    if root is not None and directory.is_relative_to(root) and not root.is_dir():
        # Every project under it is missing: name the one setting that would fix them all.
        return f"projects_root: {absent_directory(root)}"
    return absent_directory(directory)


def would_start(project: Project) -> bool:
    """A row the daemon starts an agent for: Pending, or In Progress by an agent of ours."""
    if project.status is ProjectStatus.PENDING:
        return True
    return project.status is ProjectStatus.IN_PROGRESS and project.agent.startswith(SESSION_PREFIX)


def unstartable_rows(
    config: Config, projects: Iterable[Project], source: str, skip: Iterable[str] = ()
) -> list[Finding]:
    """Rows the daemon would start but cannot: an empty Next Action, a configured directory
    that does not exist. Rows named in ``skip`` have had their directory reported already."""
    rows = [p for p in projects if would_start(p)]
    findings = empty_next_actions(rows, source, config.needs_next_action)
    skipped = set(skip)
    for project in rows:
        directory = config.project_directory(project.name, project.directory)
        if project.name in skipped or directory is None or directory.is_dir():
            continue
        field, where = _directory_origin(config, project)
        problem = f"{absent_directory(directory)}{where}"
        findings.append(Finding(source, project.line, field, problem, project.name))
    return findings


def _directory_origin(config: Config, project: Project) -> tuple[str, str]:
    """The column a directory problem is shown under, and where the directory was set."""
    if project.name in config.projects:
        return "Project", f" (projects.{project.name} in {config.file or 'the environment'})"
    if project.directory:
        return "Directory", ""
    return "Project", f" (under projects_root {config.projects_root})"


def config_problems(config: Config) -> list[Finding]:
    """Directories the config names that do not exist, whatever the list says."""
    where = str(config.file) if config.file else "(defaults)"
    root = config.projects_root
    if root is not None and not root.is_dir():
        return [Finding(where, 0, "projects_root", absent_directory(root))]
    return []
