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
``workspace: git`` from a clone. What a job is made of is built in
:mod:`sidekick.runners.swarm_job`; what runs around the agent in the task is in
:mod:`sidekick.runners.swarm_workspace`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from docker.types import SecretReference

from sidekick import stopping
from sidekick.config import AgentProfile, Config
from sidekick.containers.errors import ContainerError, ErrorCode
from sidekick.containers.labels import LABEL_PROJECT, LABEL_RUN
from sidekick.containers.spec import container_name
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
from sidekick.runners.container import project_slug
from sidekick.runners.swarm_job import (
    LABEL_LOG,
    STOP_GRACE_SECONDS,
    JobBuilder,
    Workspace,
    service_name,
)

logger = logging.getLogger(__name__)

# A task that never got a container (no such image on its node, refused mounts) has no
# exit code of its own: 125 is what `docker run` answers for the engine's own failures.
ENGINE_FAILURE_EXIT = 125
# After a job's stop grace its node kills the task; its status reaches the manager soon after.
END_MARGIN_SECONDS = 5.0
END_POLL_SECONDS = 0.1
# A job's running task is desired "complete"; one told to stop, one of these.
STOPPING_DESIRED = frozenset({"shutdown", "remove"})
# Swarm takes secret data "larger than 0 and less than 512000 bytes".
SECRET_LIMIT = 511_999


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
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.secrets = dict(secrets or {})
        self.log_root = log_root
        self.clock = clock
        self.job = JobBuilder(engine, profile, self.secrets, stop_grace)
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
            stop_grace=config.policy.stop_grace,
        )

    # --- Runner --------------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> None:
        slug = project_slug(spec.key)
        placement = self.job.placement(spec)
        workspace = self.job.workspace(spec)
        self._drop_stale_secrets(slug)
        references = self._create_secrets(spec, workspace)
        options = self.job.service_options(spec, workspace, references, placement)
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
        """End the job's task (SIGTERM, then SIGKILL after the grace the job was made with,
        ``policy.stop_grace``), keep its logs and exit, then remove the job."""
        service = self._service(key)
        if service is None:
            return
        task = self._task(service)
        if task is not None and not task.ended:
            try:
                self.engine.end_job(service)
            except ContainerError as exc:
                if exc.code is not ErrorCode.NOT_FOUND:
                    raise self._runtime_error(key, exc) from exc
                return
            task = self._wait_ended(service)
        if task is not None and task.ended:
            self._exit_code(service, task)
        else:
            self._keep_partial_logs(service)
        self._remove(service)

    def _wait_ended(self, service: ServiceInfo) -> TaskInfo | None:
        """The task once it has ended, or as it is when the grace (and a margin) is over."""
        deadline = time.monotonic() + self.job.stop_grace + END_MARGIN_SECONDS
        task = self._task(service)
        while task is not None and not task.ended and time.monotonic() < deadline:
            stopping.sleep(END_POLL_SECONDS)
            task = self._task(service)
        return task

    def reap(self, key: str) -> None:
        """Remove a finished job. One whose end is already recorded while its task still
        runs (lost with its node) is kept until that task has stopped: removing the job
        would leave it running when the node comes back, unseen."""
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
        self._require_task_stopped(service)
        self._remove(service)

    def _require_task_stopped(self, service: ServiceInfo) -> None:
        """Return once the job's task has stopped (or its node left the swarm); else tell
        the task to shut down and raise, to be asked again on a later reconcile."""
        task = self._task(service)
        if task is None or task.ended:
            return
        nodes = {node.id: node for node in self.engine.nodes()}
        node = nodes.get(task.node_id)
        if node is None:
            return
        if task.desired_state not in STOPPING_DESIRED:
            self.engine.end_job(service)
        raise RunnerError(
            service.name,
            f"its task is lost with node {node_names(list(nodes.values()))[node.id]}: the job "
            "goes once the node is back and has stopped it, or is removed from the swarm "
            "(docker node rm)",
        )

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

    def _create_secrets(self, spec: LaunchSpec, workspace: Workspace) -> list[SecretReference]:
        slug = project_slug(spec.key)
        labels = {LABEL_PROJECT: slug, LABEL_RUN: spec.run_id}
        uid, gid = _ids(self.job.user(spec))
        references = []
        payloads = self.job.secret_payloads(spec, workspace)
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
        slug = project_slug(key)
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


__all__ = ["SwarmRunner", "task_exit_code"]
