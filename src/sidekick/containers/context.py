"""How a project directory is containerised, and the commands a person would type for it.

:func:`detect_context` walks the project once (bounded depth, skipping
dependency and VCS directories) and reads Dockerfiles with their stages,
Compose files with their services, Kubernetes kustomizations, Helm charts and
plain manifests, and devcontainer.json. With the host's runtimes it builds
commands as argument lists; :func:`context_report` is ``sidekick context``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from sidekick.containers.manifests import (
    COMPOSE_NAMES,
    DEV_SERVICE_NAMES,
    KUSTOMIZATION_NAMES,
    ComposeFile,
    ComposeService,
    DevContainer,
    Dockerfile,
    HelmChart,
    KubernetesObject,
    Kustomization,
    Problem,
    is_dockerfile,
    read_chart,
    read_compose,
    read_devcontainer,
    read_dockerfile,
    read_kustomization,
    read_manifests,
)
from sidekick.containers.runtimes import Runtime, probe_runtimes
from sidekick.models import slugify

logger = logging.getLogger(__name__)

MAX_DEPTH = 4
MAX_FILES = 5000
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "vendor",
        "target",
        "dist",
    }
)
DEFAULT_SHELL = ("sh",)


class Kind(enum.Enum):
    DOCKERFILE = "Dockerfile"
    COMPOSE = "Compose"
    KUBERNETES = "Kubernetes"
    DEVCONTAINER = "devcontainer"


@dataclass(frozen=True)
class Command:
    """A command a person would type, as the argument list to run it with."""

    purpose: str
    argv: tuple[str, ...]

    @property
    def runtime(self) -> str:
        return self.argv[0] if self.argv else ""

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class ProjectContext:
    directory: Path
    dockerfiles: tuple[Dockerfile, ...] = ()
    compose_files: tuple[ComposeFile, ...] = ()
    kustomizations: tuple[Kustomization, ...] = ()
    charts: tuple[HelmChart, ...] = ()
    manifests: tuple[KubernetesObject, ...] = ()
    devcontainers: tuple[DevContainer, ...] = ()
    runtimes: tuple[Runtime, ...] = ()
    problems: tuple[Problem, ...] = ()
    commands: tuple[Command, ...] = field(default=())

    @property
    def kinds(self) -> tuple[Kind, ...]:
        present = {
            Kind.DOCKERFILE: self.dockerfiles,
            Kind.COMPOSE: self.compose_files,
            Kind.KUBERNETES: self.kustomizations or self.charts or self.manifests,
            Kind.DEVCONTAINER: self.devcontainers,
        }
        return tuple(kind for kind, found in present.items() if found)

    @property
    def compose(self) -> ComposeFile | None:
        """The file ``docker compose`` picks by itself: the first standard name present."""
        return self.compose_files[0] if self.compose_files else None

    @property
    def dev_image(self) -> str | None:
        """The image an agent defaults to: devcontainer's, else a Compose dev service's."""
        for devcontainer in self.devcontainers:
            if devcontainer.image:
                return devcontainer.image
            image = self._devcontainer_service_image(devcontainer)
            if image:
                return image
        return self._compose_dev_image()

    def runtime(self, name: str) -> Runtime | None:
        return next((r for r in self.runtimes if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: paths as text, enums by value."""
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        data["kinds"] = [kind.value for kind in self.kinds]
        data["dev_image"] = self.dev_image
        data["commands"] = [
            {"purpose": c.purpose, "argv": list(c.argv), "text": str(c)} for c in self.commands
        ]
        data["runtimes"] = [
            {**_jsonable(dataclasses.asdict(r)), "installed": r.installed, "usable": r.usable}
            for r in self.runtimes
        ]
        return data

    def _devcontainer_service_image(self, devcontainer: DevContainer) -> str:
        compose = self.compose
        if not devcontainer.service or compose is None:
            return ""
        service = compose.service(devcontainer.service)
        return compose.image_of(service) if service else ""

    def _compose_dev_image(self) -> str | None:
        compose = self.compose
        if compose is None:
            return None
        for name in DEV_SERVICE_NAMES:
            service = compose.service(name)
            if service is not None and compose.image_of(service):
                return compose.image_of(service)
        return None


# --- detection -------------------------------------------------------------------------------


def detect_context(
    directory: Path | str,
    *,
    runtimes: Sequence[Runtime] | None = None,
) -> ProjectContext:
    """Read the project's container files; probe the host's runtimes unless given."""
    root = Path(directory).resolve()
    found = _Found()
    for path in _walk(root):
        found.add(root, path)
    probed = tuple(runtimes) if runtimes is not None else probe_runtimes()
    context = found.context(root, probed)
    return dataclasses.replace(context, commands=tuple(build_commands(context)))


@dataclass
class _Found:
    dockerfiles: list[Dockerfile] = field(default_factory=list)
    compose_files: list[ComposeFile] = field(default_factory=list)
    kustomizations: list[Kustomization] = field(default_factory=list)
    charts: list[HelmChart] = field(default_factory=list)
    manifests: list[KubernetesObject] = field(default_factory=list)
    devcontainers: list[DevContainer] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, root: Path, path: Path) -> None:
        reader = _reader_for(root, path)
        if reader is None or (reader is read_manifests and _in_chart(root, path)):
            return
        result = reader(path)
        if isinstance(result, Problem):
            self.problems.append(result)
        elif isinstance(result, tuple):
            self.manifests.extend(result)
        else:
            self._keep(result)

    def _keep(self, record: object) -> None:
        kept: dict[type, list[Any]] = {
            Dockerfile: self.dockerfiles,
            ComposeFile: self.compose_files,
            Kustomization: self.kustomizations,
            HelmChart: self.charts,
            DevContainer: self.devcontainers,
        }
        kept[type(record)].append(record)

    def context(self, root: Path, runtimes: tuple[Runtime, ...]) -> ProjectContext:
        order = {name: i for i, name in enumerate(COMPOSE_NAMES)}
        compose = sorted(self.compose_files, key=lambda c: order.get(c.path.name, len(order)))
        return ProjectContext(
            directory=root,
            dockerfiles=tuple(
                sorted(self.dockerfiles, key=lambda d: _depth_then_name(root, d.path))
            ),
            compose_files=tuple(compose),
            kustomizations=tuple(self.kustomizations),
            charts=tuple(self.charts),
            manifests=tuple(self.manifests),
            devcontainers=tuple(self.devcontainers),
            runtimes=runtimes,
            problems=tuple(self.problems),
        )


def _reader_for(root: Path, path: Path) -> Any:
    name = path.name
    by_name = {
        "Chart.yaml": read_chart,
        **dict.fromkeys(KUSTOMIZATION_NAMES, read_kustomization),
    }
    if is_dockerfile(name):
        return read_dockerfile
    if name in COMPOSE_NAMES:
        return read_compose if path.parent == root else None
    if name in by_name:
        return by_name[name]
    if _is_devcontainer(path.relative_to(root)):
        return read_devcontainer
    return read_manifests if path.suffix in (".yaml", ".yml") else None


def _is_devcontainer(relative: PurePath) -> bool:
    parts = relative.parts
    if parts == (".devcontainer.json",):
        return True
    return len(parts) in (2, 3) and parts[0] == ".devcontainer" and parts[-1] == "devcontainer.json"


def _walk(root: Path) -> Iterator[Path]:
    """Files under root, shallow first, bounded in depth and count."""
    seen = 0
    for current, dirs, files in os.walk(root):
        depth = len(Path(current).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and depth < MAX_DEPTH)
        for name in sorted(files):
            seen += 1
            if seen > MAX_FILES:
                logger.warning("context: stopped after %d files in %s", MAX_FILES, root)
                return
            yield Path(current) / name


def _in_chart(root: Path, path: Path) -> bool:
    """Inside a Helm chart: its templates and values are Go templates, not manifests."""
    parent = path.parent
    while parent != root and root in parent.parents:
        if (parent / "Chart.yaml").is_file():
            return True
        parent = parent.parent
    return (root / "Chart.yaml").is_file()


def _depth_then_name(root: Path, path: Path) -> tuple[int, str]:
    relative = path.relative_to(root)
    return len(relative.parts), str(relative)


# --- commands ----------------------------------------------------------------------------------


def docker_run(
    image: str,
    directory: Path | str,
    argv: Sequence[str] = DEFAULT_SHELL,
    *,
    runtime: str = "docker",
    workdir: str | None = None,
    interactive: bool = True,
) -> tuple[str, ...]:
    """``docker run`` (or podman) with the project mounted and used as the working directory."""
    inside = workdir or str(directory)
    flags = ("-it",) if interactive else ()
    mount = f"{directory}:{inside}"
    return (runtime, "run", "--rm", *flags, "-v", mount, "-w", inside, image, *argv)


def compose_exec(
    compose_file: Path,
    service: str,
    argv: Sequence[str] = DEFAULT_SHELL,
    *,
    interactive: bool = True,
) -> tuple[str, ...]:
    flags = () if interactive else ("-T",)
    return (
        *_compose(compose_file),
        "exec",
        *flags,
        service,
        *argv,
    )


def compose_up(compose_file: Path, service: str) -> tuple[str, ...]:
    return (*_compose(compose_file), "up", "-d", service)


def kubectl_exec(
    target: str,
    argv: Sequence[str] = DEFAULT_SHELL,
    *,
    namespace: str = "",
    interactive: bool = True,
) -> tuple[str, ...]:
    scope = ("-n", namespace) if namespace else ()
    flags = ("-it",) if interactive else ()
    return ("kubectl", "exec", *flags, *scope, target, "--", *argv)


def _compose(compose_file: Path) -> tuple[str, ...]:
    directory = str(compose_file.parent)
    return ("docker", "compose", "-f", str(compose_file), "--project-directory", directory)


def build_commands(context: ProjectContext) -> Iterator[Command]:
    yield from _dockerfile_commands(context)
    yield from _compose_commands(context)
    yield from _kubernetes_commands(context)
    yield from _devcontainer_commands(context)


def _runtimes_for_images(context: ProjectContext) -> tuple[str, ...]:
    podman = context.runtime("podman")
    return ("docker", "podman") if podman is not None and podman.installed else ("docker",)


def _dockerfile_commands(context: ProjectContext) -> Iterator[Command]:
    if not context.dockerfiles:
        return
    dockerfile = context.dockerfiles[0]
    stage = dockerfile.dev_stage
    if stage is None:
        return
    last = stage.index == len(dockerfile.stages) - 1
    if not stage.name and not last:
        return  # docker build --target takes a stage's name only; this one has none
    tag = f"{slugify(context.directory.name)}:{stage.name or 'latest'}"
    target = () if last else ("--target", stage.name)
    for runtime in _runtimes_for_images(context):
        build = (runtime, "build", "-f", str(dockerfile.path), *target, "-t", tag)
        yield Command(f"build {tag} ({runtime})", (*build, str(context.directory)))
        yield Command(
            f"run a shell in {tag} ({runtime})", docker_run(tag, context.directory, runtime=runtime)
        )


def _compose_commands(context: ProjectContext) -> Iterator[Command]:
    compose = context.compose
    if compose is None:
        return
    for service in _dev_first(compose.services):
        if service.name in DEV_SERVICE_NAMES:
            yield Command(
                f"start Compose service {service.name}", compose_up(compose.path, service.name)
            )
        yield Command(
            f"shell in Compose service {service.name}", compose_exec(compose.path, service.name)
        )


def _dev_first(services: Sequence[ComposeService]) -> list[ComposeService]:
    return sorted(services, key=lambda s: s.name not in DEV_SERVICE_NAMES)


def _kubernetes_commands(context: ProjectContext) -> Iterator[Command]:
    for kustomization in context.kustomizations:
        directory = str(kustomization.path.parent)
        yield Command(f"apply kustomization {directory}", ("kubectl", "apply", "-k", directory))
    for chart in context.charts:
        directory = str(chart.path.parent)
        yield Command(
            f"install Helm chart {chart.name}", ("helm", "install", chart.name, directory)
        )
    for obj in context.manifests:
        if obj.exec_target:
            yield Command(
                f"shell in {obj.kind} {obj.name}",
                kubectl_exec(obj.exec_target, namespace=obj.namespace),
            )


def _devcontainer_commands(context: ProjectContext) -> Iterator[Command]:
    for dev in context.devcontainers:
        workdir = dev.workspace_folder or f"/workspaces/{context.directory.name}"
        if dev.image:
            argv = docker_run(dev.image, context.directory, workdir=workdir)
            yield Command(f"run a shell in the devcontainer image {dev.image}", argv)
        if dev.dockerfile:
            tag = f"{slugify(context.directory.name)}-devcontainer"
            build_dir = dev.base_dir / (dev.build_context or ".")
            dockerfile = dev.base_dir / dev.dockerfile
            build = ("docker", "build", "-f", str(dockerfile), "-t", tag, str(build_dir))
            yield Command(f"build the devcontainer image {tag}", build)
        for compose_file in dev.compose_files[:1]:
            if dev.service:
                argv = compose_exec(dev.base_dir / compose_file, dev.service)
                yield Command(f"shell in the devcontainer service {dev.service}", argv)


# --- the report ----------------------------------------------------------------------------------


def context_report(directory: Path | str, context: ProjectContext | None = None) -> str:
    """What ``sidekick context PROJECT`` prints."""
    context = context or detect_context(directory)
    kinds = ", ".join(kind.value for kind in context.kinds) or "not containerised"
    lines = [f"Project: {context.directory}", f"Containerised as: {kinds}"]
    lines += _section("Dockerfiles", _dockerfile_lines(context))
    lines += _section("Compose", _compose_lines(context))
    lines += _section("Kubernetes", _kubernetes_lines(context))
    lines += _section("Devcontainer", _devcontainer_lines(context))
    lines.append(f"Dev image: {context.dev_image or 'none found'}")
    lines += _section(
        "Runtimes on this host", [f"{r.name}: {r.summary()}" for r in context.runtimes]
    )
    lines += _section("Commands", [f"{c.purpose}:\n      {c}" for c in context.commands])
    lines += _section("Problems", [str(p) for p in context.problems])
    return "\n".join(lines) + "\n"


def _section(title: str, body: Sequence[str]) -> list[str]:
    return ["", f"{title}:", *(f"  {line}" for line in body)] if body else []


def _relative(context: ProjectContext, path: Path) -> str:
    try:
        return str(path.relative_to(context.directory))
    except ValueError:
        return str(path)


def _dockerfile_lines(context: ProjectContext) -> list[str]:
    lines = []
    for dockerfile in context.dockerfiles:
        stages = ", ".join(
            f"{s.name or '#' + str(s.index)} (FROM {s.base}, line {s.line})"
            for s in dockerfile.stages
        )
        lines.append(f"{_relative(context, dockerfile.path)}: {stages}")
    return lines


def _compose_lines(context: ProjectContext) -> list[str]:
    lines = []
    for compose in context.compose_files:
        lines.append(f"{_relative(context, compose.path)} (project {compose.project}):")
        for service in compose.services:
            image = compose.image_of(service) or "no image"
            built = f", built from {service.build_context}" if service.build_context else ""
            target = f" target {service.target}" if service.target else ""
            lines.append(f"  {service.name}: {image}{built}{target}")
    return lines


def _kubernetes_lines(context: ProjectContext) -> list[str]:
    lines = [f"kustomization: {_relative(context, k.path)}" for k in context.kustomizations]
    for chart in context.charts:
        version = f" {chart.version}" if chart.version else ""
        lines.append(f"Helm chart {chart.name}{version}: {_relative(context, chart.path)}")
    for obj in context.manifests:
        namespace = f" in namespace {obj.namespace}" if obj.namespace else ""
        lines.append(f"{obj.kind} {obj.name}{namespace} ({_relative(context, obj.path)})")
    return lines


def _devcontainer_lines(context: ProjectContext) -> list[str]:
    lines = []
    for dev in context.devcontainers:
        how = dev.image or (f"Dockerfile {dev.dockerfile}" if dev.dockerfile else "")
        if dev.compose_files:
            how = f"Compose {', '.join(dev.compose_files)} service {dev.service or '?'}"
        lines.append(f"{_relative(context, dev.path)}: {how or 'no image, Dockerfile or Compose'}")
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value
