"""What a container is asked to be, and the rules it must keep before the engine sees it.

A :class:`ContainerSpec` names the project (by slug), the run, the image and
the command; the service adds the labels and the deterministic name. The rules
are checked here, before any engine call: never privileged, no host
namespaces, and bind mounts only from the project directory, the secrets and
the configured paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NoReturn

from sidekick.containers.errors import UnsafeContainerSpec
from sidekick.containers.labels import LABEL_INSTANCE, LABEL_MANAGED, LABEL_PROJECT, LABEL_RUN

SECRETS_DIR = PurePosixPath("/run/secrets")
RESTART_POLICIES = ("no", "on-failure", "unless-stopped", "always")
HOST_NETWORK = "host"

_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def container_name(project_slug: str) -> str:
    """The deterministic name of a project's container: the same key tmux uses."""
    from sidekick.models import SESSION_PREFIX  # models (hashlib, unicodedata) only when used

    return SESSION_PREFIX + project_slug


@dataclass(frozen=True)
class Bind:
    """A host directory or file mounted into the container (source as the daemon sees it)."""

    source: Path
    target: PurePosixPath
    read_only: bool = False


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory: str | None = None
    pids: int | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """One container to create for one run of one project."""

    project: str
    run_id: str
    image: str
    command: tuple[str, ...]
    project_dir: Path | None = None
    workdir: str | None = None
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    binds: tuple[Bind, ...] = ()
    secrets: Mapping[str, Path] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    network: str | None = None
    restart_policy: str = "no"
    user: str | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    # An init process as PID 1 passes signals on and reaps zombies; without it the
    # engine execs the command itself, so a missing binary fails the start.
    init: bool = True

    @property
    def name(self) -> str:
        return container_name(self.project)

    def all_labels(self, instance: str = "") -> dict[str, str]:
        """The caller's labels under sidekick's own, which always win."""
        own = {LABEL_MANAGED: "true", LABEL_PROJECT: self.project, LABEL_RUN: self.run_id}
        if instance:
            own[LABEL_INSTANCE] = instance
        return {**self.labels, **own}

    def all_binds(self) -> tuple[Bind, ...]:
        """Every mount: the caller's binds, then each secret read-only under /run/secrets."""
        secrets = (
            Bind(source, SECRETS_DIR / name, read_only=True)
            for name, source in sorted(self.secrets.items())
        )
        return (*self.binds, *secrets)


def check_spec(spec: ContainerSpec, allowed_paths: Iterable[Path] = ()) -> None:
    """Refuse, with the reason, a spec that breaks a rule; return quietly otherwise."""
    _check_network(spec)
    _check_limits(spec)
    for name in spec.secrets:
        if not _SECRET_NAME.match(name):
            _refuse(spec, f"secret name {name!r} must be a plain file name")
    roots = _allowed_roots(spec, allowed_paths)
    secret_files = {_real(path) for path in spec.secrets.values()}
    for bind in spec.all_binds():
        _check_bind(spec, bind, roots, secret_files)


def _check_network(spec: ContainerSpec) -> None:
    if spec.network == HOST_NETWORK:
        _refuse(spec, "network 'host' would share the host's network namespace")
    if spec.restart_policy not in RESTART_POLICIES:
        _refuse(spec, f"restart policy must be one of {', '.join(RESTART_POLICIES)}")


def _check_limits(spec: ContainerSpec) -> None:
    limits = spec.limits
    if limits.cpus is not None and limits.cpus <= 0:
        _refuse(spec, f"cpus must be above 0, got {limits.cpus}")
    if limits.pids is not None and limits.pids <= 0:
        _refuse(spec, f"pids_limit must be above 0, got {limits.pids}")
    if limits.memory is not None:
        memory_bytes(spec, limits.memory)


def memory_bytes(spec: ContainerSpec, text: str) -> int:
    """A memory limit such as ``512m`` or ``2g`` in bytes; refuses anything else."""
    from docker.utils import parse_bytes  # docker-py is loaded only where a call needs it

    try:
        value = int(parse_bytes(text))
    except Exception:
        _refuse(spec, f"memory {text!r} is not a size such as 512m or 2g")
    if value <= 0:
        _refuse(spec, f"memory {text!r} must be above 0")
    return value


def _allowed_roots(spec: ContainerSpec, allowed_paths: Iterable[Path]) -> list[Path]:
    roots = [_real(path) for path in allowed_paths]
    if spec.project_dir is not None:
        roots.append(_real(spec.project_dir))
    return roots


def _check_bind(
    spec: ContainerSpec, bind: Bind, roots: list[Path], secret_files: set[Path]
) -> None:
    if not bind.source.is_absolute() or not bind.target.is_absolute():
        _refuse(spec, f"mount {bind.source} -> {bind.target}: both paths must be absolute")
    if bind.target == PurePosixPath("/"):
        _refuse(spec, f"mount {bind.source} -> /: the container's root cannot be replaced")
    # The real path, so a symlink inside the project cannot smuggle in /etc or the socket.
    real = _real(bind.source)
    if real in secret_files and bind.read_only:
        return
    if not any(real == root or root in real.parents for root in roots):
        allowed = ", ".join(str(root) for root in roots) or "none"
        _refuse(
            spec,
            f"mount source {bind.source} is outside the project directory, the secrets and "
            f"containers.allowed_paths (allowed: {allowed})",
        )


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _refuse(spec: ContainerSpec, problem: str) -> NoReturn:
    raise UnsafeContainerSpec(spec.project, problem)
