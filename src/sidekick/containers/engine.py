"""The one place that talks to the Docker engine.

Every call goes through :meth:`ContainerEngine.call`, which turns whatever
the SDK raised into a :class:`ContainerError` with a code a caller can act
on, and drops the connection when the engine is gone so the next call
reconnects by itself; a read may instead go through :meth:`ContainerEngine.get_json`
or :meth:`ContainerEngine.get_stream`, which on a Unix socket skip docker-py
(:mod:`sidekick.containers.wire` says why) and sort their errors the same way.
Containers it creates carry sidekick's labels and the
deterministic name ``sidekick-<slug>``; it never stops, restarts, renames or
removes a container without that label unless a person named it in
``containers.managed_names``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote

from sidekick.containers.errors import ContainerError, ErrorCode, UnmanagedContainer
from sidekick.containers.labels import LABEL_INSTANCE, selector
from sidekick.containers.records import ContainerInfo
from sidekick.containers.settings import ContainersConfig
from sidekick.containers.wire import ResponseBody, Wire, WireError, unchunked

if TYPE_CHECKING:
    # docker-py (with requests and urllib3) is imported when a call first needs it: the
    # reads of wire.py go without it, and it costs more than a whole ``prod status``.
    import docker.errors
    import requests
    from docker.api.client import APIClient
    from docker.client import DockerClient
    from docker.types import CancellableStream, Mount

    from sidekick.containers.paths import HostPaths
    from sidekick.containers.spec import Bind, ContainerSpec
    from sidekick.containers.streams import ContainerEvent, LogChunk, Logs

logger = logging.getLogger(__name__)

T = TypeVar("T")

PING_TIMEOUT = 3.0
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
EVENT_ACTIONS = (
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "kill",
    "stop",
    "pause",
    "unpause",
    "rename",
    "destroy",
)
_START_OPERATIONS = frozenset({"create", "start"})
_STOP_OPERATIONS = frozenset({"stop", "restart", "remove", "kill"})
_CONNECTION_CODES = frozenset({ErrorCode.NETWORK_ERROR, ErrorCode.PERMISSION_DENIED})


class EngineStatus(NamedTuple):
    """The answer of :meth:`ContainerEngine.ping`: ``ok``, or the reason it is not. (A
    tuple: a look defines no dataclass; see sidekick.production.view.)"""

    ok: bool
    detail: str
    code: ErrorCode | None = None


class ContainerEngine:
    """Create, start, stop, restart, remove, inspect, list, logs, wait and events."""

    def __init__(
        self, settings: ContainersConfig | None = None, *, host_paths: HostPaths | None = None
    ) -> None:
        self.settings = settings or ContainersConfig()
        self._client: DockerClient | None = None
        self._wire: Wire | None = None
        self._lock = threading.Lock()
        self._host_paths = host_paths

    # --- the connection --------------------------------------------------------------

    @property
    def socket(self) -> str:
        """Where the engine is expected: the configured host, DOCKER_HOST, or the default."""
        chosen = self.settings.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        return chosen.replace("http+unix://", "unix://", 1)

    def ping(self) -> EngineStatus:
        """One cheap round trip; never raises."""
        try:
            self.call("ping", "", _ping, retry=True)
        except ContainerError as exc:
            return EngineStatus(False, str(exc), exc.code)
        return EngineStatus(True, f"the Docker engine answers at {self.socket}")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _api(self) -> APIClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client.api

    def _connect(self) -> DockerClient:
        from docker.client import DockerClient, from_env

        settings = self.settings
        # The stubs say ``timeout: int``; docker-py hands it to requests and to the
        # socket, which take float seconds, so a configured 2.5 stays 2.5.
        if settings.docker_host:
            return DockerClient(
                base_url=settings.docker_host,
                version=settings.api_version,
                timeout=settings.timeout,  # type: ignore[arg-type]  # float seconds work
            )
        return from_env(
            version=settings.api_version,
            timeout=settings.timeout,  # type: ignore[arg-type]  # float seconds work
        )

    def call(
        self, operation: str, project: str, fn: Callable[[APIClient], T], *, retry: bool = False
    ) -> T:
        """Run one SDK call; a read retries once on a fresh connection after a dropped one."""
        return _retried(lambda: self._attempt(operation, project, fn), retry)

    def _attempt(self, operation: str, project: str, fn: Callable[[APIClient], T]) -> T:
        import docker.errors
        import requests

        try:
            return fn(self._api())
        except (docker.errors.DockerException, requests.RequestException) as exc:
            error = engine_error(exc, operation, project, self.socket)
            if error.code in _CONNECTION_CODES:
                self._drop_client()
            raise error from exc

    # --- reads without docker-py (see sidekick.containers.wire for why) ----------------

    def get_json(
        self, operation: str, project: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One read of the engine's API (``path`` such as ``/containers/json``), parsed; over
        the Unix socket itself when the engine is on one, else through docker-py. Retried
        once after a dropped connection, as every read is."""
        wire = self._wire_client()
        if wire is None:
            return self.call(
                operation, project, lambda api: _sdk_get(api, path, params).json(), retry=True
            )
        return _retried(lambda: self._over_wire(operation, project, wire.get_json, path, params))

    def get_stream(
        self, operation: str, project: str, path: str, params: Mapping[str, Any] | None = None
    ) -> ResponseBody:
        """A streamed read (a log): its body as the blocks arrive, without a read timeout."""
        wire = self._wire_client()
        if wire is None:
            response = self.call(
                operation, project, lambda api: _sdk_get(api, path, params, stream=True)
            )
            return _StreamFaults(
                _SdkBody(response), lambda exc: engine_error(exc, operation, project, self.socket)
            )

        def stream(path: str, params: Mapping[str, Any] | None) -> ResponseBody:
            return wire.get(path, params, timeout=None)

        body = self._over_wire(operation, project, stream, path, params)
        return _StreamFaults(body, lambda exc: wire_error(exc, operation, project, self.socket))

    def _wire_client(self) -> Wire | None:
        socket = self.socket
        if not socket.startswith("unix://"):
            return None
        with self._lock:
            if self._wire is None:
                path = socket.removeprefix("unix://")
                self._wire = Wire(path, self.settings.timeout, self.settings.api_version)
            return self._wire

    def _over_wire(
        self,
        operation: str,
        project: str,
        fn: Callable[[str, Mapping[str, Any] | None], T],
        path: str,
        params: Mapping[str, Any] | None,
    ) -> T:
        try:
            return fn(path, params)
        except (WireError, OSError) as exc:
            error = wire_error(exc, operation, project, self.socket)
            if error.code in _CONNECTION_CODES:
                with self._lock:
                    self._wire = None  # the engine may come back another version
            raise error from exc

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                logger.debug("closing a dead Docker client: %s", exc)

    # --- host paths --------------------------------------------------------------------

    def host_paths(self) -> HostPaths:
        """How daemon paths map to host paths; the daemon's own mounts, inspected once."""
        if self._host_paths is None:
            self._host_paths = self._discover_host_paths()
            logger.info("host paths: %s", self._host_paths.describe())
        return self._host_paths

    def _discover_host_paths(self) -> HostPaths:
        from sidekick.containers.paths import HostPaths, mounts_of, own_container_id

        configured = self.settings.own_container
        wanted = configured or own_container_id()
        if wanted is None:
            return HostPaths()
        try:
            raw = self.call("inspect", "", lambda api: api.inspect_container(wanted), retry=True)
        except ContainerError as exc:
            if exc.code is not ErrorCode.NOT_FOUND or configured:
                raise
            # A container this engine does not know: the engine runs inside it too
            # (Docker in Docker), so both see the same filesystem.
            logger.warning("own container %s unknown to the engine; paths used as they are", wanted)
            return HostPaths()
        return HostPaths(str(raw["Id"]), mounts_of(raw))

    # --- creating and starting -----------------------------------------------------

    def create(self, spec: ContainerSpec) -> ContainerInfo:
        """Create (not start) the project's container; a taken name is ALREADY_EXISTS."""
        from sidekick.containers.spec import check_spec  # a look never creates one

        check_spec(spec, self.settings.allowed_paths)
        paths = self.host_paths()
        mounts = [_mount(bind, paths) for bind in spec.all_binds()]
        labels = spec.all_labels(self.settings.instance)

        def create(api: APIClient) -> dict[str, Any]:
            host_config = api.create_host_config(**_host_options(spec, mounts))
            created: dict[str, Any] = api.create_container(
                spec.image,
                command=list(spec.command) or None,
                name=spec.name,
                labels=labels,
                environment=dict(spec.env),
                working_dir=spec.workdir,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                user=spec.user,
                host_config=host_config,
                detach=True,
            )
            return created

        created = self.call("create", spec.project, create)
        for warning in created.get("Warnings") or ():
            logger.info("engine warning for %s: %s", spec.name, warning)
        return ContainerInfo(str(created["Id"]), spec.name, "created", labels)

    def run(self, spec: ContainerSpec) -> ContainerInfo:
        """Create and start; a container that fails to start is removed again."""
        info = self.create(spec)
        try:
            self.start(info.id, spec.project)
        except ContainerError:
            self._discard(info.id, spec.project)
            raise
        return info

    def start(self, name: str, project: str = "") -> None:
        """Start a container; one already running is a success (the engine answers 304)."""
        self.call("start", project, lambda api: api.start(name))

    def _discard(self, container_id: str, project: str) -> None:
        try:
            self.call("remove", project, lambda api: api.remove_container(container_id, force=True))
        except ContainerError as exc:
            logger.warning("cannot remove container that failed to start: %s", exc)

    # --- stopping and removing (managed containers only) ---------------------------

    def stop(self, name: str, grace: float = 10.0, project: str = "") -> None:
        """Signal, then kill after ``grace`` seconds; a stopped container is a success."""
        info = self._owned(name, "stop", project)
        if info.ended or info.state == "created":
            return
        grace_seconds = max(0, math.ceil(grace))
        self.call("stop", project, lambda api: api.stop(info.id, timeout=grace_seconds))

    def restart(self, name: str, grace: float = 10.0, project: str = "") -> None:
        info = self._owned(name, "restart", project)
        grace_seconds = max(0, math.ceil(grace))
        self.call("restart", project, lambda api: api.restart(info.id, timeout=grace_seconds))

    def remove(self, name: str, *, force: bool = False, project: str = "") -> None:
        """Remove a container; a running one only with ``force`` (STOP_FAILED otherwise)."""
        info = self._owned(name, "remove", project)
        volumes = info.managed
        self.call(
            "remove", project, lambda api: api.remove_container(info.id, force=force, v=volumes)
        )

    def rename(self, name: str, new_name: str, project: str = "") -> None:
        info = self._owned(name, "rename", project)
        self.call("rename", project, lambda api: api.rename(info.id, new_name))

    def _owned(self, name: str, operation: str, project: str) -> ContainerInfo:
        """The container, if sidekick may change it: labelled, or named by a person."""
        info = self.inspect(name, project)
        if info.name in self.settings.managed_names or self.is_ours(info):
            return info
        raise UnmanagedContainer(
            project or info.project or info.name,
            f"refusing to {operation} container {info.name}: it lacks the labels "
            f"{', '.join(selector(self.settings.instance))} and is not listed in "
            "containers.managed_names",
        )

    def is_ours(self, info: ContainerInfo) -> bool:
        """Carries the managed label (and this instance's label, when one is configured)."""
        instance = self.settings.instance
        return info.managed and (not instance or info.labels.get(LABEL_INSTANCE) == instance)

    # --- looking ---------------------------------------------------------------------

    def inspect(self, name: str, project: str = "") -> ContainerInfo:
        raw = self.call("inspect", project, lambda api: api.inspect_container(name), retry=True)
        return ContainerInfo.from_inspect(raw)

    def list(self, project: str | None = None) -> list[ContainerInfo]:
        """Managed containers (all states) in one engine call, filtered by label there."""
        labels = selector(self.settings.instance, project)
        rows = self.call(
            "list",
            project or "",
            lambda api: api.containers(all=True, filters={"label": labels}),
            retry=True,
        )
        return [ContainerInfo.from_list(row) for row in rows]

    def logs(
        self,
        name: str,
        *,
        tail: int | None = None,
        since: datetime | float | None = None,
        project: str = "",
    ) -> Logs:
        """Output so far, stdout and stderr kept apart, in one engine call."""
        from sidekick.containers.streams import Logs, split_frames

        params = _log_params(tail, since, follow=False)
        body = self.call(
            "logs", project, lambda api: _logs_response(api, name, params, stream=False).content
        )
        return Logs(split_frames(body))

    def follow_logs(
        self,
        name: str,
        *,
        tail: int | None = 0,
        since: datetime | float | None = None,
        project: str = "",
    ) -> LogStream:
        """Output as it comes, until the container stops or the stream is closed."""
        params = _log_params(tail, since, follow=True)
        response = self.call(
            "logs", project, lambda api: _logs_response(api, name, params, stream=True)
        )
        return LogStream(response)

    def wait(self, name: str, timeout: float | None = None, project: str = "") -> int | None:
        """The exit code once the container has stopped; None if ``timeout`` passes first."""

        def wait(api: APIClient) -> int | None:
            import requests

            try:
                # A request timeout (requests takes float seconds; the stubs say int).
                answer = api.wait(name, timeout=timeout)  # type: ignore[arg-type]
                return int(answer["StatusCode"])
            except requests.RequestException as exc:
                if timed_out(exc):
                    return None
                raise

        return self.call("wait", project, wait)

    def events(
        self,
        *,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        project: str | None = None,
    ) -> EventStream:
        """State changes of managed containers, filtered by the engine."""
        labels = selector(self.settings.instance, project)
        filters = {"type": ["container"], "label": labels, "event": list(EVENT_ACTIONS)}

        def subscribe(api: APIClient) -> CancellableStream[dict[str, Any]]:
            # The stubs take datetime | int; docker-py sends a float as it is, which keeps
            # the fraction of a second (a datetime it turns into whole seconds).
            stream: CancellableStream[dict[str, Any]] = api.events(  # type: ignore[call-overload]
                since=since, until=until, filters=filters, decode=True
            )
            return stream

        stream = self.call("events", project or "", subscribe)
        return EventStream(stream, project or "", self.socket, ends=until is not None)


class LogStream:
    """Iterate for :class:`LogChunk` s; ``close()`` from any thread ends the iteration."""

    def __init__(self, response: requests.Response) -> None:
        from docker.types import CancellableStream

        from sidekick.containers.streams import read_frames

        self._stream = CancellableStream(read_frames(response.raw.read), response)

    def __iter__(self) -> Iterator[LogChunk]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()


class EventStream:
    """Iterate for :class:`ContainerEvent` s; the engine going away raises NETWORK_ERROR."""

    def __init__(
        self, stream: CancellableStream[dict[str, Any]], project: str, socket: str, *, ends: bool
    ) -> None:
        self._stream = stream
        self._project = project
        self._socket = socket
        self._ends = ends
        self._closed = False

    def __iter__(self) -> Iterator[ContainerEvent]:
        import docker.errors
        import requests

        from sidekick.containers.streams import ContainerEvent

        try:
            for raw in self._stream:
                yield ContainerEvent.from_raw(raw)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise engine_error(exc, "events", self._project, self._socket) from exc
        if not self._closed and not self._ends:
            raise ContainerError(
                ErrorCode.NETWORK_ERROR,
                self._project,
                f"the event stream from {self._socket} ended: the engine closed the connection",
            )

    def close(self) -> None:
        self._closed = True
        self._stream.close()


# --- helpers that shape SDK calls ----------------------------------------------------


def _retried(attempt: Callable[[], T], retry: bool = True) -> T:
    try:
        return attempt()
    except ContainerError as exc:
        if not retry or exc.code is not ErrorCode.NETWORK_ERROR:
            raise
        logger.info("Docker engine connection lost, reconnecting: %s", exc)
        return attempt()


def _ping(api: APIClient) -> bool:
    response = api.get(f"{api.base_url}/_ping", timeout=PING_TIMEOUT)
    response.raise_for_status()
    return True


def _mount(bind: Bind, paths: HostPaths) -> Mount:
    from docker.types import Mount

    source = str(paths.to_host(bind.source))
    return Mount(str(bind.target), source, type="bind", read_only=bind.read_only)


def _host_options(spec: ContainerSpec, mounts: list[Mount]) -> dict[str, Any]:
    """HostConfig: limits and policy from the profile; never privileged or host-namespaced."""
    limits = spec.limits
    options: dict[str, Any] = {
        "mounts": mounts,
        "privileged": False,
        "init": spec.init,
        "security_opt": ["no-new-privileges:true"],
        "restart_policy": {"Name": spec.restart_policy},
        "extra_hosts": dict(spec.extra_hosts) or None,
    }
    if spec.network:
        options["network_mode"] = spec.network
    if limits.cpus is not None:
        options["nano_cpus"] = round(limits.cpus * 1e9)
    if limits.memory is not None:
        from sidekick.containers.spec import memory_bytes

        options["mem_limit"] = memory_bytes(spec, limits.memory)
    if limits.pids is not None:
        options["pids_limit"] = limits.pids
    return options


def _log_params(
    tail: int | None, since: datetime | float | None, *, follow: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "follow": int(follow),
        "tail": "all" if tail is None else max(0, tail),
    }
    if since is not None:
        params["since"] = since.timestamp() if isinstance(since, datetime) else since
    return params


def _logs_response(
    api: APIClient, name: str, params: dict[str, Any], *, stream: bool
) -> requests.Response:
    return _sdk_get(api, f"/containers/{quote(name, safe='')}/logs", params, stream=stream)


def _sdk_get(
    api: APIClient, path: str, params: Mapping[str, Any] | None, *, stream: bool = False
) -> requests.Response:
    import docker.errors
    import requests

    url = f"{api.base_url}/v{api.api_version}{path}"
    response = api.get(url, params=params, stream=stream, timeout=None if stream else api.timeout)
    try:
        response.raise_for_status()
    except requests.HTTPError as exc:
        docker.errors.create_api_error_from_http_exception(exc)
    return response


class _StreamFaults:
    """A streamed body whose faults while it streams (an answer cut short, a chunk that
    cannot be read) are ContainerErrors, as the call's own are: a cut log is an error, never
    a log that ends early. (requests' errors are OSErrors too.)"""

    def __init__(
        self, body: ResponseBody, fault: Callable[[WireError | OSError], ContainerError]
    ) -> None:
        self._body = body
        self._fault = fault

    def read(self, size: int) -> bytes:
        try:
            return self._body.read(size)
        except (WireError, OSError) as exc:
            raise self._fault(exc) from exc

    def close(self) -> None:
        self._body.close()


class _SdkBody:
    """A streamed docker-py response as a :class:`ResponseBody`. The engine sends a log
    chunked, one HTTP chunk per line, and http.client takes each chunk apart with several
    Python calls: most of the time of a long log. So, as docker-py itself reaches the
    connection's socket file for attached streams (``response.raw._fp.fp``), a body not yet
    read is taken apart here, a block at a time; any other body is read through urllib3."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        raw = response.raw
        message, read1 = getattr(raw, "_fp", None), None
        if getattr(message, "chunked", False) and getattr(message, "chunk_left", 0) is None:
            read1 = getattr(getattr(message, "fp", None), "read1", None)
        self._read: Callable[[int], bytes] = raw.read1
        self._closed = False
        if read1 is not None:
            blocks = unchunked(read1)
            self._read = lambda _size: next(blocks, b"")

    def read(self, size: int) -> bytes:
        try:
            return self._read(size)
        except OSError:
            if self._closed:
                return b""  # closed on purpose (a followed log): its end, not a cut answer
            raise

    def close(self) -> None:
        self._closed = True
        self._response.close()


# --- errors ------------------------------------------------------------------------------


def engine_error(exc: BaseException, operation: str, project: str, socket: str) -> ContainerError:
    """What the SDK raised, as a ContainerError with the engine's own message."""
    code = classify(exc, operation)
    return _error(code, project, _engine_message(exc, code, socket), socket)


def wire_error(
    exc: WireError | OSError, operation: str, project: str, socket: str
) -> ContainerError:
    """What a read of :mod:`sidekick.containers.wire` met, sorted as SDK errors are."""
    if isinstance(exc, WireError):
        code = _status_code(exc.status, exc.message, operation)
        return _error(code, project, exc.message + _never_pulls(code), socket)
    denied = isinstance(exc, PermissionError)
    message = f"cannot reach the Docker engine at {socket}: {exc.strerror or _short(exc)}"
    if type(exc) is ConnectionError and exc.errno is None:
        # Reached, but what came back was cut or not HTTP: the reader's words say what came.
        message = f"a bad answer from the Docker engine at {socket}: {_short(exc)}"
    code = ErrorCode.PERMISSION_DENIED if denied else ErrorCode.NETWORK_ERROR
    return _error(code, project, message, socket)


def _error(code: ErrorCode, project: str, message: str, socket: str) -> ContainerError:
    if code is ErrorCode.PERMISSION_DENIED:
        return ContainerError(code, project, message, socket, _socket_gid(socket))
    return ContainerError(code, project, message)


def classify(exc: BaseException, operation: str) -> ErrorCode:
    import docker.errors
    import requests

    if isinstance(exc, docker.errors.APIError):
        return _api_code(exc, operation)
    causes = list(_causes(exc))
    if any(isinstance(cause, PermissionError) for cause in causes):
        return ErrorCode.PERMISSION_DENIED
    if operation in _STOP_OPERATIONS and timed_out(exc):
        # The engine took the request and could not finish it in time: the stop failed.
        return ErrorCode.STOP_FAILED
    if any(isinstance(c, requests.RequestException | OSError) for c in causes):
        return ErrorCode.NETWORK_ERROR
    return _failure_code(operation)


def timed_out(exc: BaseException) -> bool:
    """The engine took the request but gave no answer in time (not: could not connect)."""
    import requests
    import urllib3

    return any(
        isinstance(c, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError)
        for c in _causes(exc)
    )


def _api_code(exc: docker.errors.APIError, operation: str) -> ErrorCode:
    import docker.errors

    if isinstance(exc, docker.errors.ImageNotFound):
        return ErrorCode.IMAGE_NOT_FOUND
    if isinstance(exc, docker.errors.NotFound):
        return ErrorCode.NOT_FOUND
    return _status_code(exc.status_code, "", operation)


def _status_code(status: int | None, message: str, operation: str) -> ErrorCode:
    if status == 404:
        # docker-py's test for ImageNotFound, on the engine's own words.
        image = "no such image" in message.lower()
        return ErrorCode.IMAGE_NOT_FOUND if image else ErrorCode.NOT_FOUND
    if status == 409 and operation == "create":
        return ErrorCode.ALREADY_EXISTS
    if status in (401, 403):
        return ErrorCode.PERMISSION_DENIED
    return _failure_code(operation)


def _failure_code(operation: str) -> ErrorCode:
    if operation in _START_OPERATIONS:
        return ErrorCode.START_FAILED
    if operation in _STOP_OPERATIONS:
        return ErrorCode.STOP_FAILED
    return ErrorCode.NETWORK_ERROR


def _causes(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """The exception, its causes, and exceptions carried in its args (urllib3 nests them)."""
    yield exc
    if depth >= 8:
        return
    nested = [arg for arg in exc.args if isinstance(arg, BaseException)]
    for inner in (exc.__cause__, exc.__context__, *nested):
        if inner is not None and inner is not exc:
            yield from _causes(inner, depth + 1)


def _engine_message(exc: BaseException, code: ErrorCode, socket: str) -> str:
    import docker.errors

    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc) + _never_pulls(code)
    if code in _CONNECTION_CODES:
        reason = next((c for c in _causes(exc) if isinstance(c, OSError) and c.strerror), None)
        detail = reason.strerror if reason is not None else _short(exc)
        return f"cannot reach the Docker engine at {socket}: {detail}"
    return _short(exc)


def _never_pulls(code: ErrorCode) -> str:
    if code is ErrorCode.IMAGE_NOT_FOUND:
        return " (sidekick never pulls: build or load the image on this engine)"
    return ""


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _socket_gid(socket: str) -> int | None:
    if not socket.startswith("unix://"):
        return None
    try:
        return Path(socket.removeprefix("unix://")).stat().st_gid
    except OSError:
        return None
