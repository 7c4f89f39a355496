"""``sidekick prod detect``: which Compose project runs a project's production; changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.records import ContainerInfo
from sidekick.containers.scope import (
    COMPOSE_WORKING_DIR,
    all_compose_containers,
    compose_projects,
    service_of,
)
from sidekick.models import slugify
from sidekick.production.settings import default_project_name


@dataclass(frozen=True)
class Found:
    compose_project: str
    working_dir: str
    containers: tuple[ContainerInfo, ...]
    why: str

    def services(self) -> list[str]:
        return sorted({service_of(c) for c in self.containers})

    def to_dict(self) -> dict[str, object]:
        return {
            "compose_project": self.compose_project,
            "working_dir": self.working_dir,
            "why": self.why,
            "services": self.services(),
            "containers": [{"name": c.name, "state": c.state} for c in self.containers],
        }


def detect(engine: ContainerEngine, project: str, path: Path | None) -> list[Found]:
    """Compose projects whose working directory is ``path``, or whose name matches the project."""
    names = {slugify(project), default_project_name(Path(project))}
    if path is not None:
        names.add(default_project_name(path))
    found = []
    for name, rows in sorted(compose_projects(all_compose_containers(engine)).items()):
        working_dir = rows[0].labels.get(COMPOSE_WORKING_DIR, "")
        why = _why(name, working_dir, names, path)
        if why:
            found.append(Found(name, working_dir, tuple(sorted(rows, key=lambda r: r.name)), why))
    return found


def _why(name: str, working_dir: str, names: set[str], path: Path | None) -> str:
    if path is not None and working_dir and Path(working_dir).resolve() == path.resolve():
        return "its working directory is the production path"
    if name in names:
        return "its name matches the project"
    return ""


def config_block(project: str, workspace: Path | None, found: Found) -> str:
    """The projects: entry to paste into config.yaml."""
    lines = [
        "projects:",
        f"  {project}:",
        f"    directory: {workspace or '<the workspace>'}",
        "    production:",
        f"      path: {found.working_dir or '<the production directory>'}",
        f"      compose_project: {found.compose_project}",
    ]
    services = found.services()
    if services:
        lines.append(f"      primary: {services[0]}")
    return "\n".join(lines)


def render(project: str, workspace: Path | None, found: list[Found]) -> str:
    if not found:
        return f"{project}: no Compose project on this engine matches its name or path"
    parts = []
    for each in found:
        head = f"{each.compose_project} ({each.why}; {each.working_dir or 'no working dir'})"
        rows = [f"  {c.name}  {service_of(c)}  {c.state}" for c in each.containers]
        parts.append("\n".join([head, *rows, "", config_block(project, workspace, each)]))
    return "\n\n".join(parts)
