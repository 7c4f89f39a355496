"""Reading a project's container files: Dockerfiles, Compose, Kubernetes, devcontainer.json.

Each reader takes one file and returns a frozen record, or a :class:`Problem`
naming the file when it cannot be read; one broken file never hides the
others. Nothing here runs a tool or talks to an engine.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
import yaml

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEV_SERVICE_NAMES = ("dev", "devcontainer", "development")
WORKLOAD_KINDS = {
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Pod": "pod",
    "Job": "job",
}

_FROM = re.compile(
    r"^FROM\s+(?:--\S+\s+)*(?P<base>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$", re.IGNORECASE
)
_ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(?P<char>[\\`])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


# --- Dockerfile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    index: int
    base: str
    name: str
    line: int


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    stages: tuple[Stage, ...]

    @property
    def dev_stage(self) -> Stage | None:
        """The stage a person develops in: one named like dev, else the last."""
        named = [s for s in self.stages if s.name.lower() in DEV_SERVICE_NAMES]
        return named[0] if named else (self.stages[-1] if self.stages else None)


def is_dockerfile(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in ("dockerfile", "containerfile")
        or lowered.endswith(".dockerfile")
        or lowered.startswith(("dockerfile.", "containerfile."))
    )


def read_dockerfile(path: Path) -> Dockerfile | Problem:
    text = _read_text(path)
    if isinstance(text, Problem):
        return text
    stages: list[Stage] = []
    for line_number, instruction in logical_lines(text):
        found = _FROM.match(instruction)
        if found:
            stages.append(Stage(len(stages), found["base"], found["name"] or "", line_number))
    if not stages:
        return Problem(path, "no FROM instruction: not a Dockerfile")
    return Dockerfile(path, tuple(stages))


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instructions with continuation lines joined, comments dropped, with first line numbers."""
    escape = "\\"
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        directive = _ESCAPE_DIRECTIVE.match(raw.strip()) if number == 1 else None
        if directive:
            escape = directive["char"]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start = start or number
        if stripped.endswith(escape):
            pending.append(stripped[:-1].strip())
            continue
        yield start, " ".join([*pending, stripped])
        pending, start = [], 0
    if pending:
        yield start, " ".join(pending)


# --- Compose ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str = ""
    build_context: str = ""
    dockerfile: str = ""
    target: str = ""
    container_name: str = ""
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeFile:
    path: Path
    project: str
    services: tuple[ComposeService, ...]

    def service(self, name: str) -> ComposeService | None:
        return next((s for s in self.services if s.name == name), None)

    def image_of(self, service: ComposeService) -> str:
        """The image a service runs: its own, or the one Compose names when it builds it."""
        if service.image:
            return service.image
        return f"{self.project}-{service.name}" if service.build_context else ""


def read_compose(path: Path) -> ComposeFile | Problem:
    data = _read_yaml(path)
    if isinstance(data, Problem):
        return data
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        return Problem(path, "no services: mapping, so Compose cannot use it")
    project = compose_project_name(str(data.get("name") or path.parent.name))
    services = tuple(_service(str(n), raw) for n, raw in data["services"].items())
    return ComposeFile(path, project, services)


def compose_project_name(text: str) -> str:
    """Compose's own normalisation: lower case, only letters, digits, dash and underscore."""
    name = re.sub(r"[^a-z0-9_-]", "", text.lower())
    return name.lstrip("_-") or "default"


def _service(name: str, raw: Any) -> ComposeService:
    raw = raw if isinstance(raw, dict) else {}
    build = raw.get("build")
    if isinstance(build, str):
        build = {"context": build}
    build = build if isinstance(build, dict) else {}
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), list) else []
    return ComposeService(
        name=name,
        image=str(raw.get("image") or ""),
        build_context=str(build.get("context") or ("." if build else "")),
        dockerfile=str(build.get("dockerfile") or ""),
        target=str(build.get("target") or ""),
        container_name=str(raw.get("container_name") or ""),
        profiles=tuple(str(p) for p in profiles),
    )


# --- Kubernetes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesObject:
    path: Path
    api_version: str
    kind: str
    name: str
    namespace: str = ""

    @property
    def exec_target(self) -> str:
        """What ``kubectl exec`` takes for a workload (``deployment/web``), else empty."""
        kind = WORKLOAD_KINDS.get(self.kind, "")
        return f"{kind}/{self.name}" if kind and self.name else ""


@dataclass(frozen=True)
class Kustomization:
    path: Path
    namespace: str = ""
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class HelmChart:
    path: Path
    name: str
    version: str = ""


def read_manifests(path: Path) -> tuple[KubernetesObject, ...] | Problem:
    """Every document with apiVersion and kind; other YAML is not Kubernetes and is skipped."""
    text = _read_text(path)
    if isinstance(text, Problem):
        return text
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        if "apiVersion" in text and "kind" in text:
            return Problem(path, f"not valid YAML: {_yaml_problem(exc)}")
        return ()
    return tuple(obj for doc in documents if (obj := _k8s_object(path, doc)) is not None)


def _k8s_object(path: Path, doc: Any) -> KubernetesObject | None:
    if not isinstance(doc, dict):
        return None
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    metadata: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    return KubernetesObject(
        path,
        api_version,
        kind,
        str(metadata.get("name") or ""),
        str(metadata.get("namespace") or ""),
    )


def read_kustomization(path: Path) -> Kustomization | Problem:
    data = _read_yaml(path)
    if isinstance(data, Problem):
        return data
    fields: dict[str, Any] = data if isinstance(data, dict) else {}
    resources = fields.get("resources")
    listed = tuple(map(str, resources)) if isinstance(resources, list) else ()
    return Kustomization(path, str(fields.get("namespace") or ""), listed)


def read_chart(path: Path) -> HelmChart | Problem:
    data = _read_yaml(path)
    if isinstance(data, Problem):
        return data
    if not isinstance(data, dict) or not data.get("name"):
        return Problem(path, "a Helm Chart.yaml needs a name")
    return HelmChart(path, str(data["name"]), str(data.get("version") or ""))


# --- devcontainer.json ------------------------------------------------------------------------


@dataclass(frozen=True)
class DevContainer:
    path: Path
    name: str = ""
    image: str = ""
    dockerfile: str = ""
    build_context: str = ""
    compose_files: tuple[str, ...] = ()
    service: str = ""
    workspace_folder: str = ""
    remote_user: str = ""

    @property
    def base_dir(self) -> Path:
        """Paths in devcontainer.json are relative to the file's own directory."""
        return self.path.parent


def read_devcontainer(path: Path) -> DevContainer | Problem:
    text = _read_text(path)
    if isinstance(text, Problem):
        return text
    try:
        data = parse_jsonc(text)
    except ValueError as exc:
        return Problem(path, f"not valid JSON (with comments): {_json5_problem(exc)}")
    if not isinstance(data, dict):
        return Problem(path, "devcontainer.json must hold an object")
    return _devcontainer(path, data)


def _devcontainer(path: Path, data: Mapping[str, Any]) -> DevContainer:
    build: dict[str, Any] = data["build"] if isinstance(data.get("build"), dict) else {}
    compose = data.get("dockerComposeFile") or ()
    compose_files = (compose,) if isinstance(compose, str) else tuple(map(str, compose))
    return DevContainer(
        path=path,
        name=str(data.get("name") or ""),
        image=str(data.get("image") or ""),
        dockerfile=str(build.get("dockerfile") or data.get("dockerFile") or ""),
        build_context=str(build.get("context") or data.get("context") or ""),
        compose_files=compose_files,
        service=str(data.get("service") or ""),
        workspace_folder=str(data.get("workspaceFolder") or ""),
        remote_user=str(data.get("remoteUser") or data.get("containerUser") or ""),
    )


def parse_jsonc(text: str) -> Any:
    """JSON with comments and trailing commas (what VS Code writes), parsed by a real JSON5
    parser so that comment marks and commas inside strings stay as they were written."""
    return json5.loads(text)


# --- reading files ----------------------------------------------------------------------------


def _read_text(path: Path) -> str | Problem:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Problem(path, f"larger than {MAX_FILE_BYTES} bytes; not read")
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        return Problem(path, f"cannot be read: {exc.strerror or exc}")


def _read_yaml(path: Path) -> Any:
    text = _read_text(path)
    if isinstance(text, Problem):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return Problem(path, f"not valid YAML: {_yaml_problem(exc)}")


def _json5_problem(exc: ValueError) -> str:
    """json5 names the input ``<string>``; the Problem already names the file."""
    return re.sub(r"^<string>:(\d+)", r"line \1:", str(exc))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"line {exc.problem_mark.line + 1}: {exc.problem or exc}"
    return str(exc)
