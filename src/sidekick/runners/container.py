"""Agents in their own containers, siblings on the Docker engine.

Each run is one container named ``sidekick-<slug>`` (the same key as a tmux
session), labelled for sidekick, from the profile's image or the project's dev
image. The project directory is mounted at the same path the daemon knows it
by, as is the agent's Claude Code config directory; the API key arrives as a
read-only secret file, never in the container's environment. The engine is the
truth: ``list_agents`` is one labelled list call, the exit code comes from the
container's state, and a finished container's logs and exit status are copied
beside the run's log (the tmux runner's convention) before it is removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from sidekick.background import OnWorker, Worker
from sidekick.config import AgentProfile, Config
from sidekick.containers.context import detect_context
from sidekick.containers.engine import ContainerEngine, EngineStatus, EventStream
from sidekick.containers.errors import ContainerError, ErrorCode, UnmanagedContainer
from sidekick.containers.records import ContainerInfo
from sidekick.containers.spec import Bind, ContainerSpec, Limits, container_name
from sidekick.containers.streams import ContainerEvent
from sidekick.errors import AgentAlreadyRunning, RunnerError, RunnerUnavailable, SidekickError
from sidekick.models import SESSION_PREFIX
from sidekick.runners.agent_wrapper import write_exit_status
from sidekick.runners.base import LaunchSpec, LiveAgent, read_exit_status

logger = logging.getLogger(__name__)

API_KEY_FILE_NAME = "anthropic_api_key"
STDIN_FILE_NAME = "sidekick_stdin"
API_KEY_VARIABLE = "ANTHROPIC_API_KEY"
BASE_URL_VARIABLE = "ANTHROPIC_BASE_URL"
CONFIG_DIR_VARIABLE = "CLAUDE_CONFIG_DIR"
RUN_ID_VARIABLE = "SIDEKICK_RUN_ID"
PROJECT_VARIABLE = "SIDEKICK_PROJECT"
LABEL_LOG = "sidekick.log"
HOST_ALIAS = "host.docker.internal"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A container left "created" this long was orphaned by a daemon that died mid-start.
CREATED_GRACE = timedelta(seconds=30)
EVENTS_RETRY_SECONDS = 2.0
SETTLE_SECONDS = 5.0
SETTLE_STEP = 0.02
EXIT_ACTIONS = frozenset({"die", "oom"})

# The agent's own argument list ("$@") runs with stderr joined to stdout, so its log
# keeps the order it printed in (the engine may reorder two pipes), and the API key
# is read from its secret file, so it never shows in `docker inspect`. Its standard
# input is the launch's stdin file (the prompt, of any length), mounted read-only.
AGENT_WRAPPER = (
    f"if [ -r /run/secrets/{API_KEY_FILE_NAME} ]; then "
    f'{API_KEY_VARIABLE}="$(cat /run/secrets/{API_KEY_FILE_NAME})"; export {API_KEY_VARIABLE}; '
    f"fi; if [ -r /run/secrets/{STDIN_FILE_NAME} ]; then "
    f'exec "$@" < /run/secrets/{STDIN_FILE_NAME} 2>&1; fi; exec "$@" < /dev/null 2>&1'
)

DevImageFinder = Callable[[Path], str | None]


def project_dev_image(directory: Path) -> str | None:
    """The project's own dev image, from its devcontainer.json or Compose dev service."""
    return detect_context(directory, runtimes=()).dev_image


class ContainerRunner:
    """The :class:`~sidekick.runners.base.Runner` that runs each agent in a container."""

    name = "container"

    def __init__(
        self,
        engine: ContainerEngine,
        profile: AgentProfile,
        *,
        secrets: Mapping[str, Path] | None = None,
        dev_image: DevImageFinder = project_dev_image,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log_root: Path | None = None,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.secrets = dict(secrets or {})
        self.dev_image = dev_image
        self.clock = clock
        self.log_root = log_root
        # The daemon's agent poll and its reconcile may both find the same ended container.
        self._harvest = threading.Lock()

    @classmethod
    def from_config(
        cls, config: Config, profile_name: str = "", engine: ContainerEngine | None = None
    ) -> ContainerRunner:
        """The runner for one container profile, its secrets and its engine from the config."""
        profile = config.profile(profile_name)
        secrets = dict(profile.secrets)
        if config.api.key_file is not None:
            secrets[API_KEY_FILE_NAME] = config.api.key_file
        if engine is None:
            # Claude Code config directories live under the state directory: mountable.
            allowed = (*config.containers.allowed_paths, config.daemon.state_dir / "claude")
            engine = ContainerEngine(config.containers._replace(allowed_paths=allowed))
        return cls(engine, profile, secrets=secrets, log_root=config.daemon.state_dir / "logs")

    def ping(self) -> EngineStatus:
        """Cheap check that the engine answers: what the daemon shows as degraded."""
        return self.engine.ping()

    # --- Runner --------------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> None:
        container = self.container_spec(spec)
        try:
            info = self.engine.run(container)
        except ContainerError as exc:
            raise self._start_error(spec.key, exc) from exc
        logger.info(
            "started container %s (%s) from %s",
            spec.key,
            info.id[:12],
            container.image,
            extra={"project": spec.project},
        )

    def degraded(self) -> list[str]:
        status = self.ping()
        return [] if status.ok else [f"docker engine: {status.detail}"]

    def list_agents(self) -> dict[str, LiveAgent]:
        try:
            containers = self.engine.list()
        except ContainerError as exc:
            raise _unavailable(self.engine, exc) from exc
        agents = {}
        for info in containers:
            # Kept containers of finished runs are renamed away from the key: not agents.
            if info.name != container_name(info.project) or not self._settle_created(info):
                continue
            agents[info.name] = LiveAgent(
                info.name, info.run_id, info.created_at, self._exit_code(info)
            )
        return agents

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        try:
            self.engine.stop(key, grace_seconds, project=project_slug(key))
        except ContainerError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise self._runtime_error(key, exc) from exc

    def reap(self, key: str) -> None:
        try:
            info = self.engine.inspect(key, project_slug(key))
        except ContainerError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return
            raise self._runtime_error(key, exc) from exc
        if not self.engine.is_ours(info):
            raise UnmanagedContainer(
                project_slug(key), f"will not reap {key}: sidekick did not create it"
            )
        if info.alive:
            raise RunnerError(key, "still running: stop it before reaping")
        if self._exit_code(info) is None and info.ended:
            raise RunnerError(key, "its logs could not be kept yet; reaping later")
        self._dispose(info)

    # --- building the container -----------------------------------------------------------

    def container_spec(self, spec: LaunchSpec) -> ContainerSpec:
        """The container for one launch: image, mounts, secrets, limits, env, command."""
        profile = self.profile
        env = {**spec.env, RUN_ID_VARIABLE: spec.run_id, PROJECT_VARIABLE: spec.project}
        binds = [Bind(spec.cwd, PurePosixPath(spec.cwd))]
        config_dir = env.get(CONFIG_DIR_VARIABLE)
        if config_dir:
            binds.append(Bind(Path(config_dir), PurePosixPath(config_dir)))
        extra_hosts = {} if profile.network else reach_host_api(env)
        entrypoint, command = self._command(spec.argv, env)
        user = profile.user or directory_owner(spec.cwd)
        if user is not None and config_dir and "HOME" not in env:
            # A bare uid has no home in the image; its config directory is writable.
            env["HOME"] = config_dir
        return ContainerSpec(
            project=project_slug(spec.key),
            run_id=spec.run_id,
            image=self._image(spec),
            command=command,
            entrypoint=entrypoint,
            project_dir=spec.cwd,
            workdir=str(spec.cwd),
            env=env,
            binds=tuple(binds),
            secrets=self._secrets_for(spec),
            limits=Limits(profile.cpus, profile.memory, profile.pids_limit),
            network=profile.network,
            restart_policy=profile.restart_policy,
            user=user,
            extra_hosts=extra_hosts,
            labels={LABEL_LOG: str(spec.log_path)},
        )

    def _secrets_for(self, spec: LaunchSpec) -> dict[str, Path]:
        # A read-only file mount like a secret: the prompt never passes through argv.
        if spec.stdin_path is None:
            return self.secrets
        return {**self.secrets, STDIN_FILE_NAME: spec.stdin_path}

    def _image(self, spec: LaunchSpec) -> str:
        image = self.profile.image or self.dev_image(spec.cwd)
        if not image:
            raise RunnerError(
                spec.key,
                "the agent profile names no image and the project has no dev image "
                "(devcontainer.json image or a Compose dev service): set the profile's image",
            )
        return image

    def _command(
        self, argv: tuple[str, ...], env: dict[str, str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(entrypoint, command): the image's own entrypoint is always replaced."""
        if API_KEY_FILE_NAME in self.secrets:
            env.pop(API_KEY_VARIABLE, None)
        return ("/bin/sh", "-c", AGENT_WRAPPER, "sidekick-agent"), argv

    # --- what ended ------------------------------------------------------------------------

    def _exit_code(self, info: ContainerInfo) -> int | None:
        """A finished container's exit code, its logs and status kept beside the run's log."""
        if not info.ended:
            return None
        with self._harvest:
            return self._harvest_exit(info)

    def _harvest_exit(self, info: ContainerInfo) -> int | None:
        log_path = self._log_path(info)
        recorded = read_exit_status(log_path) if log_path else None
        if recorded is not None:
            return recorded
        try:
            code = info.exit_code
            if code is None:
                code = self.engine.inspect(info.id, info.project).exit_code
            if log_path is not None and code is not None:
                self._keep_logs(info, log_path, code)
        except (ContainerError, OSError) as exc:
            logger.warning("cannot keep the logs of %s yet: %s", info.name, exc)
            return None
        return code

    def _log_path(self, info: ContainerInfo) -> Path | None:
        """Where the run's log goes: from the container's label, only under the log root."""
        text = info.labels.get(LABEL_LOG, "")
        if not text:
            return None
        path = Path(os.path.normpath(text))
        if self.log_root is not None and self.log_root not in path.parents:
            logger.warning("%s names a log outside %s; not writing it", info.name, self.log_root)
            return None
        return path

    def _keep_logs(self, info: ContainerInfo, log_path: Path, code: int) -> None:
        logs = self.engine.logs(info.id, project=info.project)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(log_path, logs.combined)
        # The status last, as the tmux wrapper writes it: its presence says the log is complete.
        write_exit_status(log_path, code)

    def _settle_created(self, info: ContainerInfo) -> bool:
        """Start a container a dead daemon created but never started; False if it is gone."""
        if info.state != "created" or info.created_at is None:
            return True
        if self.clock() - info.created_at < CREATED_GRACE:
            return True
        logger.warning("starting %s, left created by an interrupted start", info.name)
        try:
            self.engine.start(info.id, info.project)
        except ContainerError as exc:
            logger.warning("%s cannot start (%s); removing it", info.name, exc)
            self._remove_quietly(info)
            return False
        return True

    def _dispose(self, info: ContainerInfo) -> None:
        if self.profile.remove_after:
            self.engine.remove(info.id, project=info.project)
            logger.info("removed container %s", info.name, extra={"project": info.project})
            return
        kept = f"{info.name}-{info.run_id or info.id[:12]}"
        self.engine.rename(info.id, kept, project=info.project)
        logger.info("kept finished container as %s", kept, extra={"project": info.project})

    def _remove_quietly(self, info: ContainerInfo) -> None:
        try:
            self.engine.remove(info.id, force=True, project=info.project)
        except (ContainerError, UnmanagedContainer) as exc:
            logger.warning("cannot remove %s: %s", info.name, exc)

    # --- errors ----------------------------------------------------------------------------

    def _start_error(self, key: str, exc: ContainerError) -> SidekickError:
        if exc.code is ErrorCode.ALREADY_EXISTS:
            return self._name_taken(key, exc)
        return self._runtime_error(key, exc)

    def _name_taken(self, key: str, exc: ContainerError) -> SidekickError:
        """A duplicate start: ours means already running; anyone else's is left alone."""
        try:
            info = self.engine.inspect(key, project_slug(key))
        except ContainerError:
            return AgentAlreadyRunning(key, exc.engine_message)
        if self.engine.is_ours(info):
            return AgentAlreadyRunning(
                key, f"container {key} exists ({info.state}, run {info.run_id})"
            )
        return UnmanagedContainer(
            project_slug(key),
            f"a container named {key} exists that sidekick did not create; "
            "rename or remove it, or list it in containers.managed_names",
        )

    def _runtime_error(self, key: str, exc: ContainerError) -> SidekickError:
        if exc.code in (ErrorCode.NETWORK_ERROR, ErrorCode.PERMISSION_DENIED):
            return _unavailable(self.engine, exc, key)
        return exc


class ContainerExits(OnWorker):
    """Calls ``on_exit`` whenever a managed container dies, from the engine's event stream.

    The daemon's push for container agents, as the exit bell is for tmux ones. When
    the engine goes away the stream ends; it subscribes again every few seconds and
    calls ``on_exit`` once on success, for anything that ended while it was away.
    """

    def __init__(
        self,
        engine: ContainerEngine,
        on_exit: Callable[[], None],
        *,
        retry_seconds: float = EVENTS_RETRY_SECONDS,
    ) -> None:
        self.engine = engine
        self._on_exit = on_exit
        self._retry_seconds = retry_seconds
        self._worker = Worker("container-exits", self._run)
        self._stopping = self._worker.stopping
        self._stream: EventStream | None = None

    @property
    def heartbeat_at(self) -> float | None:
        """None: the thread waits on the engine's event stream, which may be quiet for days."""
        return None

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        self._worker.stop(timeout=self._retry_seconds + 2)

    def _run(self) -> None:
        missed = False
        while not self._stopping.is_set():
            try:
                stream = self._stream = self.engine.events()
                if self._stopping.is_set():
                    # stop() ran while this subscribed and had no stream to close.
                    stream.close()
                    return
                if missed:
                    self._on_exit()
                for event in stream:
                    if event.action in EXIT_ACTIONS:
                        self._wait_until_listed_ended(event)
                        self._on_exit()
            except ContainerError as exc:
                logger.debug("container events: %s", exc)
            finally:
                self._stream = None
            missed = True
            self._stopping.wait(self._retry_seconds)

    def _wait_until_listed_ended(self, event: ContainerEvent) -> None:
        """The engine sends "die" a moment before its listing shows the container ended."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                listed = {info.id: info for info in self.engine.list(event.project or None)}
            except ContainerError:
                return
            info = listed.get(event.id)
            if info is None or not info.alive:
                return
            self._stopping.wait(SETTLE_STEP)


def _unavailable(engine: ContainerEngine, exc: ContainerError, key: str = "") -> RunnerUnavailable:
    problem = exc.engine_message
    if exc.code is ErrorCode.PERMISSION_DENIED:
        problem = f"{problem}. {exc.remedy()}"
    return RunnerUnavailable(key or engine.socket, problem)


def reach_host_api(env: dict[str, str]) -> dict[str, str]:
    """A loopback API URL in ``env`` means the host: rewritten (in place) to the engine's
    host gateway alias. Returns the extra hosts entry the container or task needs, or {}."""
    url = env.get(BASE_URL_VARIABLE)
    parts = urlsplit(url) if url else None
    if parts is None or parts.hostname not in LOOPBACK_HOSTS:
        return {}
    netloc = HOST_ALIAS + (f":{parts.port}" if parts.port else "")
    env[BASE_URL_VARIABLE] = urlunsplit(parts._replace(netloc=netloc))
    return {HOST_ALIAS: "host-gateway"}


def project_slug(key: str) -> str:
    """The project slug of an agent key (``sidekick-<slug>``), as labels carry it."""
    return key.removeprefix(SESSION_PREFIX)


def directory_owner(directory: Path) -> str | None:
    """The project directory's owner as uid:gid, so files the agent writes stay theirs."""
    try:
        status = directory.stat()
    except OSError:
        return None
    if status.st_uid == 0:
        return None
    return f"{status.st_uid}:{status.st_gid}"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
