"""What one swarm job is: its placement, where its code comes from, its secrets' contents,
its environment and the arguments that create its service.

Nothing here talks to the manager except to read its nodes (placement) and to
translate a bind's path for the engine; :mod:`sidekick.runners.swarm` creates,
lists and removes what is built here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.types import (
    ContainerSpec,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    SecretReference,
    ServiceMode,
    TaskTemplate,
)
from docker.utils import parse_bytes

from sidekick.config import AgentProfile
from sidekick.containers.errors import ContainerError
from sidekick.containers.labels import LABEL_PROJECT, LABEL_RUN
from sidekick.containers.swarm import SwarmEngine
from sidekick.errors import RunnerError, RunnerUnavailable
from sidekick.runners import swarm_workspace as ws
from sidekick.runners.base import LaunchSpec
from sidekick.runners.container import directory_owner, project_slug, reach_host_api
from sidekick.runners.swarm_placement import JobPlacement, no_taker_reason, placement_for, takers

LABEL_LOG = "sidekick.log"
CONFIG_DIR_VARIABLE = "CLAUDE_CONFIG_DIR"
# A path inside the task, which has its own /tmp: not a shared host directory.
TASK_CONFIG_DIR = "/tmp/sidekick-claude"  # noqa: S108
STOP_GRACE_SECONDS = 10.0
NANO = 1_000_000_000
SERVICE_NAME_LIMIT = 63


@dataclass(frozen=True)
class Workspace:
    """How the task reaches the project's code."""

    workdir: str
    mounts: tuple[Mount, ...]
    env: Mapping[str, str]
    secrets: Mapping[str, bytes]
    wrapper: str


class JobBuilder:
    """Builds one profile's jobs from launches."""

    def __init__(
        self,
        engine: SwarmEngine,
        profile: AgentProfile,
        secrets: Mapping[str, Path],
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.secrets = dict(secrets)
        # A stopped job's task gets this long after SIGTERM before its node kills it.
        self.stop_grace = stop_grace

    def service_options(
        self,
        spec: LaunchSpec,
        workspace: Workspace,
        references: list[SecretReference],
        placement: JobPlacement,
    ) -> dict[str, Any]:
        """create_service's arguments: a one-task job that never restarts, labelled."""
        env, hosts = self._environment(spec, workspace)
        container = ContainerSpec(
            self._image(spec),
            command=["/bin/sh", "-c", workspace.wrapper, "sidekick-agent", *spec.argv],
            env=env,
            workdir=workspace.workdir,
            user=self.user(spec),
            mounts=list(workspace.mounts),
            secrets=references,
            hosts=hosts or None,
            init=True,
            stop_grace_period=int(self.stop_grace * NANO),
        )
        task = TaskTemplate(
            container,
            resources=self._resources(placement),
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=list(placement.constraints)),
        )
        # Never scale() this service: that turns a job into a plain replicated service.
        return {
            "task_template": task,
            "name": service_name(spec.key),
            "labels": self._labels(spec),
            "mode": ServiceMode("replicated-job", replicas=1, concurrency=1),
        }

    def _labels(self, spec: LaunchSpec) -> dict[str, str]:
        own = {
            LABEL_PROJECT: project_slug(spec.key),
            LABEL_RUN: spec.run_id,
            LABEL_LOG: str(spec.log_path),
        }
        return self.engine.own_labels(own)

    def placement(self, spec: LaunchSpec) -> JobPlacement:
        """The job's placement; refused (the row waits, saying why) when no node meets it."""
        profile = self.profile
        reserve = (_nano_cpus(profile.reserve_cpus), _bytes(profile.reserve_memory))
        placement = placement_for(spec.gpu, profile.constraints, profile.gpu_resources, reserve)
        try:
            nodes = self.engine.nodes()
        except ContainerError as exc:
            raise RunnerUnavailable(spec.key, f"docker swarm: {exc.engine_message}") from exc
        if not takers(nodes, placement):
            raise RunnerUnavailable(spec.key, no_taker_reason(nodes, placement))
        return placement

    def _resources(self, placement: JobPlacement) -> Resources | None:
        generic = placement.generic_resources
        if not (placement.nano_cpus or placement.memory_bytes or generic):
            return None
        return Resources(
            cpu_reservation=placement.nano_cpus or None,
            mem_reservation=placement.memory_bytes or None,
            generic_resources=dict(generic) or None,
        )

    def _image(self, spec: LaunchSpec) -> str:
        if not self.profile.image:
            raise RunnerError(
                spec.key,
                "a swarm profile must name its image (every node needs it; nothing is pulled)",
            )
        return self.profile.image

    def user(self, spec: LaunchSpec) -> str | None:
        if self.profile.user:
            return self.profile.user
        if self.profile.workspace == "git":
            return None
        return directory_owner(spec.cwd)

    def _environment(
        self, spec: LaunchSpec, workspace: Workspace
    ) -> tuple[dict[str, str | bytes | None], dict[str, str]]:
        """The run's variables (never the key), Claude Code's config dir inside the task,
        and the host alias a loopback API URL needs."""
        env = {**spec.env, **workspace.env, "SIDEKICK_RUN_ID": spec.run_id}
        env["SIDEKICK_PROJECT"] = spec.project
        env.pop("ANTHROPIC_API_KEY", None)
        if CONFIG_DIR_VARIABLE in env:
            env[CONFIG_DIR_VARIABLE] = TASK_CONFIG_DIR
            if self.user(spec) is not None:
                env.setdefault("HOME", TASK_CONFIG_DIR)
        hosts = reach_host_api(env)
        return dict(env), hosts

    # --- the code: a shared path or a git clone ---------------------------------------------

    def workspace(self, spec: LaunchSpec) -> Workspace:
        if self.profile.workspace == "git":
            return self._git_workspace(spec)
        self._require_shared(spec.key, spec.cwd, "the project directory")
        mount = self._bind(spec.cwd)
        return Workspace(str(spec.cwd), (mount,), {}, {}, ws.PLAIN_WRAPPER)

    def _git_workspace(self, spec: LaunchSpec) -> Workspace:
        remote = self.profile.git_remote or ws.origin_url(spec.cwd)
        if not remote:
            raise RunnerError(
                spec.key,
                f"workspace: git needs a remote: {spec.cwd} has no origin and the profile "
                "names no git_remote",
            )
        mounts = [Mount(str(ws.WORKSPACE), None, type="volume")]
        local = ws.local_remote(remote)
        if local is not None:
            self._require_shared(spec.key, local, f"the git remote {remote}")
            mounts.append(self._bind(local))
        env = {
            **ws.GIT_ENV,
            "SIDEKICK_WORKSPACE": str(ws.WORKSPACE),
            "SIDEKICK_BRANCH": ws.branch_name(spec.project, spec.run_id),
        }
        secrets = {ws.GIT_REMOTE_FILE: remote.encode()}
        return Workspace("/", tuple(mounts), env, secrets, ws.GIT_WRAPPER)

    def _require_shared(self, key: str, path: Path, what: str) -> None:
        real = Path(os.path.realpath(path))
        shared = [Path(os.path.realpath(p)) for p in self.profile.shared_paths]
        if not any(real == root or root in real.parents for root in shared):
            raise RunnerError(
                key,
                f"{what} ({path}) is not under the profile's shared_paths, so other nodes "
                "may not have it: declare the shared filesystem there, or use workspace: git",
            )

    def _bind(self, path: Path) -> Mount:
        source = str(self.engine.host_paths().to_host(path))
        return Mount(str(path), source, type="bind")

    # --- secrets ----------------------------------------------------------------------------

    def secret_payloads(self, spec: LaunchSpec, workspace: Workspace) -> dict[str, bytes]:
        payloads = {name: path.read_bytes() for name, path in self.secrets.items()}
        if spec.stdin_path is not None:
            payloads[ws.STDIN_FILE] = spec.stdin_path.read_bytes()
        config_dir = spec.env.get(CONFIG_DIR_VARIABLE)
        if config_dir:
            payloads.update(_claude_files(Path(config_dir)))
        # An empty file is no secret to Swarm; the task reads a missing one as empty.
        return {name: data for name, data in {**payloads, **workspace.secrets}.items() if data}


def service_name(key: str) -> str:
    """The job's name: the agent's key, or within Swarm's 63 characters a deterministic
    cut of it, so a project still never has two."""
    if len(key) <= SERVICE_NAME_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{key[: SERVICE_NAME_LIMIT - len(digest) - 1]}-{digest}"


def _nano_cpus(cpus: float | None) -> int:
    return int(cpus * NANO) if cpus else 0


def _bytes(size: str | None) -> int:
    return int(parse_bytes(size)) if size else 0


def _claude_files(config_dir: Path) -> dict[str, bytes]:
    files = {ws.CLAUDE_STATE_FILE: ".claude.json", ws.CLAUDE_SETTINGS_FILE: "settings.json"}
    found = {}
    for secret, file_name in files.items():
        path = config_dir / file_name
        if path.is_file():
            found[secret] = path.read_bytes()
    return found
