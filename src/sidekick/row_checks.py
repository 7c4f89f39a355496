"""What a row needs before the daemon can start its agent, said alike by the daemon (on the
row) and by ``sidekick validate`` (before the daemon ever sees the list): a directory that
exists, and a Next Action to give the agent."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sidekick.config import Config
from sidekick.models import SESSION_PREFIX, Finding, Project, ProjectStatus

NO_DIRECTORY = (
    "no directory configured (add it under projects: in the config, a Directory column,"
    " or set projects_root)"
)
# Set only in the orchestrator image (see the Dockerfile's production stage).
IMAGE_ENV = "SIDEKICK_IMAGE_BUILT_WITH"
CONTAINER_PROJECTS = Path("/projects")
ROOT_KEY = "projects_root"
EMPTY_NEXT_ACTION = (
    "empty: it is what the agent is asked to do; the row is not started until it says something"
)


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
    """Why the row's project has no directory to work in, or None: said alike on the row by
    the daemon and by ``sidekick validate``."""
    directory = config.project_directory(project.name, project.directory)
    if directory is None:
        return NO_DIRECTORY
    if directory.is_dir():
        return None
    root = _missing_root(config, directory)
    if root is not None:
        # Every project under it is missing: name the one setting that would fix them all.
        return f"{ROOT_KEY}: {absent_directory(root)}"
    return f"{absent_directory(directory)}{_directory_origin(config, project)[1]}"


def _missing_root(config: Config, directory: Path) -> Path | None:
    """The projects_root that holds ``directory`` when that root does not exist."""
    root = config.projects_root
    if root is not None and directory.is_relative_to(root) and not root.is_dir():
        return root
    return None


def would_start(project: Project) -> bool:
    """A row the daemon starts an agent for: Pending, or In Progress by an agent of ours."""
    if project.status is ProjectStatus.PENDING:
        return True
    return project.status is ProjectStatus.IN_PROGRESS and project.agent.startswith(SESSION_PREFIX)


def waits_for_next_action(config: Config, project: Project) -> bool:
    """A Pending row whose agent would be given its empty Next Action as its work.

    Only Pending: a row our agent left In Progress resumes its run (its session, and a default
    Next Action), and that resume must not be lost for want of a prompt.
    """
    return (
        project.status is ProjectStatus.PENDING
        and not project.next_action
        and config.needs_next_action(project.model)
    )


def unstartable_rows(
    config: Config, projects: Iterable[Project], source: str, skip: Iterable[str] = ()
) -> list[Finding]:
    """Rows the daemon would start but cannot: an empty Next Action, a configured directory
    that does not exist. Rows named in ``skip`` have had their directory reported already, and
    rows under a projects_root that does not exist are said once by :func:`config_problems`."""
    rows = [p for p in projects if would_start(p)]
    findings = [
        Finding(source, p.line, "Next Action", EMPTY_NEXT_ACTION, p.name)
        for p in rows
        if waits_for_next_action(config, p)
    ]
    skipped = set(skip)
    for project in rows:
        problem = _configured_directory_problem(config, project)
        if project.name in skipped or problem is None:
            continue
        field = _directory_origin(config, project)[0]
        findings.append(Finding(source, project.line, field, problem, project.name))
    return findings


def _configured_directory_problem(config: Config, project: Project) -> str | None:
    """The daemon's directory problem for a row whose directory is configured somewhere;
    a missing projects_root is one finding of the config, not one per row."""
    directory = config.project_directory(project.name, project.directory)
    if directory is None or _missing_root(config, directory) is not None:
        return None
    return directory_problem(config, project)


def _directory_origin(config: Config, project: Project) -> tuple[str, str]:
    """The column a directory problem is shown under, and where the directory was set."""
    if project.name in config.projects:
        return "Project", f" (projects.{project.name} in {config.file or 'the environment'})"
    if project.directory:
        return "Directory", ""
    return "Project", f" (under {ROOT_KEY} {config.projects_root})"


def config_problems(config: Config) -> list[Finding]:
    """Directories the config names that do not exist, whatever the list says."""
    where = str(config.file) if config.file else "(defaults)"
    root = config.projects_root
    if root is not None and not root.is_dir():
        return [Finding(where, 0, ROOT_KEY, absent_directory(root))]
    return []
