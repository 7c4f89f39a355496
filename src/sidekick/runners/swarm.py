"""Agents as Docker Swarm jobs: one ``replicated-job`` service with one task per run.

The service is named ``sidekick-<slug>`` (the key tmux sessions and containers
use) and carries the container runner's labels, so a project never has two and
a restarted daemon adopts what the manager lists. The exit code comes from the
task's status; the service's logs and exit status are kept beside the run's log
before the service (and its secrets) are removed, since job tasks are never
cleaned up on their own. The API key, the prompt and Claude Code's settings
reach the task as Swarm secrets, never as environment variables. Placement:
GPU rows only on nodes labelled ``sidekick.gpu=true``, plus the profile's
constraints and reservations; a row no node can take says so before a job is
made. The code comes from a bind mount of a path every node shares, or with
``workspace: git`` from a clone (see :mod:`sidekick.runners.swarm_workspace`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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

from sidekick.config import AgentProfile, Config
from sidekick.containers.errors import ContainerError, ErrorCode
from sidekick.containers.spec import LABEL_PROJECT, LABEL_RUN, container_name
from sidekick.containers.swarm import SwarmEngine
from sidekick.containers.swarm_records import (
    NODE_LOST,
    NodeInfo,
    ServiceInfo,
    SwarmState,
    TaskInfo,
)
from sidekick.errors import AgentAlreadyRunning, RunnerError, RunnerUnavailable, SidekickError
from sidekick.models import SESSION_PREFIX
from sidekick.runners import swarm_workspace as ws
from sidekick.runners.agent_wrapper import write_exit_status
from sidekick.runners.base import LaunchSpec, LiveAgent, read_exit_status, write_private
from sidekick.runners.swarm_placement import JobPlacement, no_taker_reason, placement_for, takers

logger = logging.getLogger(__name__)

LABEL_LOG = "sidekick.log"
CONFIG_DIR_VARIABLE = "CLAUDE_CONFIG_DIR"
# A path inside the task, which has its own /tmp: not a shared host directory.
TASK_CONFIG_DIR = "/tmp/sidekick-claude"  # noqa: S108
BASE_URL_VARIABLE = "ANTHROPIC_BASE_URL"
HOST_ALIAS = "host.docker.internal"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STOP_GRACE_SECONDS = 10
# A task that never got a container (no such image on its node, refused mounts) has no
# exit code of its own: 125 is what `docker run` answers for the engine's own failures.
ENGINE_FAILURE_EXIT = 125
NANO = 1_000_000_000
SERVICE_NAME_LIMIT = 63
# Swarm takes secret data "larger than 0 and less than 512000 bytes".
SECRET_LIMIT = 511_999


@dataclass(frozen=True)
class _Workspace:
    """How the task reaches the project's code."""

    workdir: str
    mounts: tuple[Mount, ...]
    env: Mapping[str, str]
    secrets: Mapping[str, bytes]
    wrapper: str


class SwarmRunner:
    """The :class:`~sidekick.runners.base.Runner` that runs each agent as a Swarm job."""

    name = "swarm"

    def __init__(
        self,
        engine: SwarmEngine,
        profile: AgentProfile,
        *,
        secrets: Mapping[str, Path] | None = None,
        log_root: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.secrets = dict(secrets or {})
        self.log_root = log_root
        self.clock = clock
        # The agent poll and a reconcile may both find the same ended job.
        self._harvest = threading.Lock()

    @classmethod
    def from_config(
        cls, config: Config, profile_name: str = "", engine: SwarmEngine | None = None
    ) -> SwarmRunner:
        profile = config.profile(profile_name)
        secrets = dict(profile.secrets)
        if config.api.key_file is not None:
            secrets[ws.API_KEY_FILE] = config.api.key_file
        return cls(
            engine or SwarmEngine(config.containers),
            profile,
            secrets=secrets,
            log_root=config.daemon.state_dir / "logs",
        )

    # --- Runner --------------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> None:
        slug = _slug(spec.key)
        placement = self._placement(spec)
        workspace = self._workspace(spec)
        self._drop_stale_secrets(slug)
        references = self._create_secrets(spec, workspace)
        options = self.service_options(spec, workspace, references, placement)
        try:
            service_id = self.engine.create_service(slug, options)
        except ContainerError as exc:
            self._drop_stale_secrets(slug)
            raise self._start_error(spec.key, exc) from exc
        logger.info("created swarm job %s (%s)", spec.key, service_id[:12], extra={"project": slug})

    def list_agents(self) -> dict[str, LiveAgent]:
        jobs = []
        for service in self._services():
            key = container_name(service.project)
            if service.name == service_name(key):
                jobs.append((key, service, self._task(service)))
        down = self._down_nodes([task for _, _, task in jobs])
        agents = {}
        for key, service, task in jobs:
            code = self._exit_code(service, _lost_if_down(task, down))
            agents[key] = LiveAgent(key, service.run_id, service.created_at, code)
        return agents

    def _down_nodes(self, tasks: list[TaskInfo | None]) -> dict[str, str]:
        """Nodes that are down and hold a task still called live, by id (one call, made
        only while some task is live)."""
        if not any(t is not None and t.node_id and not t.ended for t in tasks):
            return {}
        try:
            nodes = self.engine.nodes()
        except ContainerError as exc:
            raise _unavailable(self.engine, exc) from exc
        names = node_names(nodes)
        return {n.id: names[n.id] for n in nodes if n.state == "down"}

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        """Keep what the job printed so far, then remove it (its task gets SIGTERM, then
        SIGKILL after the service's stop grace period)."""
        service = self._service(key)
        if service is None:
            return
        task = self._task(service)
        if task is not None and task.ended:
            self._exit_code(service, task)
        else:
            self._keep_partial_logs(service)
        self._remove(service)

    def reap(self, key: str) -> None:
        """Remove a finished job; one whose end is already recorded (a job lost with its
        node, which may come back) is removed whatever its task says now."""
        service = self._service(key)
        if service is None:
            return
        if self._recorded_exit(service) is None:
            task = self._task(service)
            task = _lost_if_down(task, self._down_nodes([task]))
            if task is None or not task.ended:
                raise RunnerError(key, "still running: stop it before reaping")
            if self._exit_code(service, task) is None:
                raise RunnerError(key, "its logs could not be kept yet; reaping later")
        self._remove(service)

    def degraded(self) -> list[str]:
        state = self.engine.swarm_state()
        if state.manager:
            return []
        return [f"docker swarm: no manager answers at {self.engine.socket}: {_why_not(state)}"]

    def nodes_of_agents(self) -> dict[str, str]:
        """Agent key → the node its task runs (or ran) on, by hostname (and id where two
        nodes share a hostname)."""
        names = node_names(self.engine.nodes())
        found = {}
        for service in self._services():
            task = self._task(service)
            if task is not None and task.node_id:
                found[container_name(service.project)] = names.get(task.node_id, task.node_id[:12])
        return found

    # --- building the job ---------------------------------------------------------------

    def service_options(
        self,
        spec: LaunchSpec,
        workspace: _Workspace,
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
            user=self._user(spec),
            mounts=list(workspace.mounts),
            secrets=references,
            hosts=hosts or None,
            init=True,
            stop_grace_period=STOP_GRACE_SECONDS * NANO,
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
            LABEL_PROJECT: _slug(spec.key),
            LABEL_RUN: spec.run_id,
            LABEL_LOG: str(spec.log_path),
        }
        return self.engine.own_labels(own)

    def _placement(self, spec: LaunchSpec) -> JobPlacement:
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

    def _user(self, spec: LaunchSpec) -> str | None:
        if self.profile.user:
            return self.profile.user
        if self.profile.workspace == "git":
            return None
        return _owner(spec.cwd)

    def _environment(
        self, spec: LaunchSpec, workspace: _Workspace
    ) -> tuple[dict[str, str | bytes | None], dict[str, str]]:
        """The run's variables (never the key), Claude Code's config dir inside the task,
        and the host alias a loopback API URL needs."""
        env = {**spec.env, **workspace.env, "SIDEKICK_RUN_ID": spec.run_id}
        env["SIDEKICK_PROJECT"] = spec.project
        env.pop("ANTHROPIC_API_KEY", None)
        if CONFIG_DIR_VARIABLE in env:
            env[CONFIG_DIR_VARIABLE] = TASK_CONFIG_DIR
            if self._user(spec) is not None:
                env.setdefault("HOME", TASK_CONFIG_DIR)
        hosts = self._reach_api(env)
        return dict(env), hosts

    def _reach_api(self, env: dict[str, str]) -> dict[str, str]:
        url = env.get(BASE_URL_VARIABLE)
        parts = urlsplit(url) if url else None
        if parts is None or parts.hostname not in LOOPBACK_HOSTS:
            return {}
        netloc = HOST_ALIAS + (f":{parts.port}" if parts.port else "")
        env[BASE_URL_VARIABLE] = urlunsplit(parts._replace(netloc=netloc))
        return {HOST_ALIAS: "host-gateway"}

    # --- the code: a shared path or a git clone ---------------------------------------------

    def _workspace(self, spec: LaunchSpec) -> _Workspace:
        if self.profile.workspace == "git":
            return self._git_workspace(spec)
        self._require_shared(spec.key, spec.cwd, "the project directory")
        mount = self._bind(spec.cwd)
        return _Workspace(str(spec.cwd), (mount,), {}, {}, ws.PLAIN_WRAPPER)

    def _git_workspace(self, spec: LaunchSpec) -> _Workspace:
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
        return _Workspace("/", tuple(mounts), env, secrets, ws.GIT_WRAPPER)

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

    def _secret_payloads(self, spec: LaunchSpec, workspace: _Workspace) -> dict[str, bytes]:
        payloads = {name: path.read_bytes() for name, path in self.secrets.items()}
        if spec.stdin_path is not None:
            payloads[ws.STDIN_FILE] = spec.stdin_path.read_bytes()
        config_dir = spec.env.get(CONFIG_DIR_VARIABLE)
        if config_dir:
            payloads.update(_claude_files(Path(config_dir)))
        # An empty file is no secret to Swarm; the task reads a missing one as empty.
        return {name: data for name, data in {**payloads, **workspace.secrets}.items() if data}

    def _create_secrets(self, spec: LaunchSpec, workspace: _Workspace) -> list[SecretReference]:
        slug = _slug(spec.key)
        labels = {LABEL_PROJECT: slug, LABEL_RUN: spec.run_id}
        uid, gid = _ids(self._user(spec))
        references = []
        payloads = self._secret_payloads(spec, workspace)
        for file_name, data in sorted(payloads.items()):
            if len(data) > SECRET_LIMIT:
                raise RunnerError(
                    spec.key,
                    f"{file_name} is {len(data)} bytes and a Swarm secret holds at most "
                    f"{SECRET_LIMIT}: shorten it, or use a container or tmux profile",
                )
        for file_name, data in sorted(payloads.items()):
            name = _secret_name(slug, spec.run_id, file_name)
            try:
                secret_id = self.engine.create_secret(name, data, labels)
            except ContainerError as exc:
                self._drop_stale_secrets(slug)
                raise self._start_error(spec.key, exc) from exc
            references.append(
                SecretReference(secret_id, name, filename=file_name, uid=uid, gid=gid, mode=0o400)
            )
        return references

    def _drop_stale_secrets(self, slug: str) -> None:
        """Secrets of this project's earlier runs; one a live job uses is kept by the engine."""
        try:
            stale = self.engine.secrets(slug)
        except ContainerError as exc:
            logger.warning("cannot list the secrets of %s: %s", slug, exc)
            return
        for secret in stale:
            self.engine.remove_secret(secret, slug)

    # --- what ended -------------------------------------------------------------------------

    def _services(self) -> list[ServiceInfo]:
        try:
            return self.engine.services()
        except ContainerError as exc:
            raise _unavailable(self.engine, exc) from exc

    def _service(self, key: str) -> ServiceInfo | None:
        slug = _slug(key)
        found = [s for s in self._services_of(slug) if s.name == service_name(key)]
        return found[0] if found else None

    def _services_of(self, slug: str) -> list[ServiceInfo]:
        try:
            return self.engine.services(slug)
        except ContainerError as exc:
            raise _unavailable(self.engine, exc, SESSION_PREFIX + slug) from exc

    def _task(self, service: ServiceInfo) -> TaskInfo | None:
        try:
            tasks = self.engine.tasks(service.id, service.project)
        except ContainerError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return None
            raise _unavailable(self.engine, exc, service.name) from exc
        return tasks[0] if tasks else None

    def _exit_code(self, service: ServiceInfo, task: TaskInfo | None) -> int | None:
        """The recorded exit (it stands even if a lost node's task comes back), else the
        ended task's, its logs kept first."""
        recorded = self._recorded_exit(service)
        if recorded is not None or task is None or not task.ended:
            return recorded
        with self._harvest:
            return self._harvest_exit(service, task)

    def _recorded_exit(self, service: ServiceInfo) -> int | None:
        log_path = self._log_path(service)
        return read_exit_status(log_path) if log_path else None

    def _harvest_exit(self, service: ServiceInfo, task: TaskInfo) -> int | None:
        log_path = self._log_path(service)
        recorded = self._recorded_exit(service)
        if recorded is not None:
            return recorded
        code = task_exit_code(task)
        if log_path is None:
            return code
        try:
            self._keep_logs(service, task, log_path, code)
        except (ContainerError, OSError) as exc:
            logger.warning("cannot keep the logs of %s yet: %s", service.name, exc)
            return None
        return code

    def _keep_logs(self, service: ServiceInfo, task: TaskInfo, log_path: Path, code: int) -> None:
        # A down node cannot send its logs: asking would only wait for a timeout.
        lost = task.state == NODE_LOST
        logs = b"" if lost else self.engine.service_logs(service.id, service.project)
        if lost or (task.exit_code is None and task.error):
            # No container ran: the scheduler's or the node's reason is the run's last line.
            logs += f"sidekick: the swarm task was {task.state}: {task.error}\n".encode()
        write_private(log_path, logs)
        pushed = ws.pushed_branch(logs)
        if pushed is not None:
            write_private(ws.branch_path(log_path), f"{pushed.branch} {pushed.commit}\n".encode())
        # The status last: its presence says the log is complete.
        write_exit_status(log_path, code)

    def _keep_partial_logs(self, service: ServiceInfo) -> None:
        log_path = self._log_path(service)
        if log_path is None:
            return
        try:
            write_private(log_path, self.engine.service_logs(service.id, service.project))
        except (ContainerError, OSError) as exc:
            logger.warning("cannot keep the logs of %s: %s", service.name, exc)

    def _log_path(self, service: ServiceInfo) -> Path | None:
        text = service.labels.get(LABEL_LOG, "")
        if not text:
            return None
        path = Path(os.path.normpath(text))
        if self.log_root is not None and self.log_root not in path.parents:
            logger.warning("%s names a log outside %s; not writing it", service.name, self.log_root)
            return None
        return path

    def _remove(self, service: ServiceInfo) -> None:
        try:
            self.engine.remove_service(service)
        except ContainerError as exc:
            raise self._runtime_error(service.name, exc) from exc
        self._drop_stale_secrets(service.project)
        logger.info("removed swarm job %s", service.name, extra={"project": service.project})

    # --- errors -----------------------------------------------------------------------------

    def _start_error(self, key: str, exc: ContainerError) -> SidekickError:
        if exc.code is ErrorCode.ALREADY_EXISTS:
            return AgentAlreadyRunning(key, f"swarm service {key} exists")
        return self._runtime_error(key, exc)

    def _runtime_error(self, key: str, exc: ContainerError) -> SidekickError:
        if exc.code in (ErrorCode.NETWORK_ERROR, ErrorCode.PERMISSION_DENIED):
            return _unavailable(self.engine, exc, key)
        return exc


def _lost_if_down(task: TaskInfo | None, down: Mapping[str, str]) -> TaskInfo | None:
    if task is None or task.ended or task.node_id not in down:
        return task
    return replace(task, state=NODE_LOST, error=f"node {down[task.node_id]} went down")


def service_name(key: str) -> str:
    """The job's name: the agent's key, or within Swarm's 63 characters a deterministic
    cut of it, so a project still never has two."""
    if len(key) <= SERVICE_NAME_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{key[: SERVICE_NAME_LIMIT - len(digest) - 1]}-{digest}"


def agent_nodes(config: Config) -> dict[str, str]:
    """Where each swarm agent runs, for ``sidekick status``; empty without swarm profiles
    or when no manager answers (``sidekick check`` says that)."""
    profiles = [name for name, p in config.agents.items() if p.runner == "swarm"]
    if not profiles:
        return {}
    engine = SwarmEngine(config.containers)
    try:
        return SwarmRunner.from_config(config, profiles[0], engine).nodes_of_agents()
    except (ContainerError, RunnerUnavailable) as exc:
        logger.info("no node names: %s", exc)
        return {}
    finally:
        engine.close()


def node_names(nodes: list[NodeInfo]) -> dict[str, str]:
    counts = Counter(node.hostname for node in nodes)
    return {
        n.id: n.hostname if counts[n.hostname] == 1 else f"{n.hostname} ({n.id[:12]})"
        for n in nodes
    }


def _why_not(state: SwarmState) -> str:
    if state.node_state == "unreachable":
        return state.error
    if state.node_state == "inactive":
        return "this engine is in no swarm (run docker swarm init, or join one)"
    if state.active:
        return "this engine is a swarm worker: point containers.docker_host at a manager"
    return state.error or f"the engine's swarm state is {state.node_state or 'unknown'}"


def task_exit_code(task: TaskInfo) -> int:
    """The job's exit code: its container's, or the engine-failure code when none ran."""
    if task.exit_code is not None and (task.exit_code != 0 or task.state == "complete"):
        return task.exit_code
    return 0 if task.state == "complete" else ENGINE_FAILURE_EXIT


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


def _secret_name(slug: str, run_id: str, file_name: str) -> str:
    """Unique per run and file, within Swarm's 64 characters whatever the slug's length."""
    digest = hashlib.sha256(f"{slug}\0{run_id}".encode()).hexdigest()[:16]
    return f"sidekick-{digest}-{file_name}"[:64]


def _ids(user: str | None) -> tuple[str, str]:
    """The secret files' owner: the task's numeric user, or root."""
    uid, _, gid = (user or "0").partition(":")
    if not uid.isdigit():
        return "0", "0"
    return uid, gid if gid.isdigit() else uid


def _unavailable(engine: SwarmEngine, exc: ContainerError, key: str = "") -> RunnerUnavailable:
    return RunnerUnavailable(key or engine.socket, f"docker swarm: {exc.engine_message}")


def _slug(key: str) -> str:
    return key.removeprefix(SESSION_PREFIX)


def _owner(directory: Path) -> str | None:
    try:
        status = directory.stat()
    except OSError:
        return None
    return None if status.st_uid == 0 else f"{status.st_uid}:{status.st_gid}"


__all__ = ["SwarmRunner", "task_exit_code"]
