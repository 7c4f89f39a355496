"""Containers sidekick does not own but a person configured: a Compose project or names.

Production containers carry Compose's labels, not sidekick's, so
:class:`ContainerEngine` refuses to touch them. A :class:`Scope` names what a
person configured (Compose project names, container names); :class:`ScopedEngine`
reads and changes only containers inside it, and every call still passes through
the engine's one choke point (:meth:`ContainerEngine.call`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import UnmanagedContainer
from sidekick.containers.records import (
    FRAME_HEADER,
    STREAMS,
    ContainerInfo,
    parse_time,
)
from sidekick.containers.wire import ResponseBody

if TYPE_CHECKING:
    from docker.api.client import APIClient

logger = logging.getLogger(__name__)

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_WORKING_DIR = "com.docker.compose.project.working_dir"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
READ_BLOCK = 1 << 16


class Scope(NamedTuple):
    """What may be read or changed: containers of these Compose projects, or with these names.
    (A tuple, as ExecResult below.)"""

    projects: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    def holds(self, info: ContainerInfo) -> bool:
        return info.labels.get(COMPOSE_PROJECT) in self.projects or info.name in self.names

    def filters(self) -> dict[str, Any]:
        """The engine-side filter of the list call: by label when only Compose projects."""
        if self.names or len(self.projects) != 1:
            return {}
        (project,) = self.projects
        return {"label": [f"{COMPOSE_PROJECT}={project}"]}


class ExecResult(NamedTuple):
    """A command run in a container: its exit code and its output. (A tuple: a look defines
    no dataclass; see sidekick.production.view.)"""

    exit_code: int
    output: str


def service_of(info: ContainerInfo) -> str:
    """The Compose service, or the container's name for a named container."""
    return info.labels.get(COMPOSE_SERVICE) or info.name


class ScopedEngine:
    """List, inspect, restart, exec, logs and image tags, inside one :class:`Scope`."""

    def __init__(self, engine: ContainerEngine, scope: Scope, project: str = "") -> None:
        self.engine = engine
        self.scope = scope
        self.project = project

    def list(self) -> list[ContainerInfo]:
        """Every container of the scope (all states), in one engine list call."""
        params = {"all": 1, "filters": json.dumps(self.scope.filters())}
        rows = self.engine.get_json("list", self.project, "/containers/json", params)
        found = (ContainerInfo.from_list(row) for row in rows)
        return [info for info in found if self.scope.holds(info) and not _one_off(info)]

    def inspect(self, name: str) -> ContainerInfo:
        return self._held(name)

    def restart(self, name: str, grace: float = 10.0) -> None:
        info = self._held(name)
        seconds = max(0, round(grace))
        self.engine.call("restart", self.project, lambda api: api.restart(info.id, timeout=seconds))

    def exec(self, name: str, command: Iterable[str]) -> ExecResult:
        info = self._held(name)
        argv = list(command)

        def run(api: APIClient) -> ExecResult:
            created = api.exec_create(info.id, argv, stdout=True, stderr=True)
            output = api.exec_start(created["Id"])
            code = api.exec_inspect(created["Id"]).get("ExitCode")
            return ExecResult(int(code if code is not None else -1), _text(output))

        return self.engine.call("exec", self.project, run)

    def log_records(
        self,
        listed: ContainerInfo,
        *,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
        follow: bool = False,
        timestamps: bool = True,
    ) -> LogRecords:
        """The log of a container :meth:`list` gave, as it streams from the engine, each frame
        with its timestamp (unless ``timestamps`` is off: then iterate
        :meth:`LogRecords.blocks` yourself). Its row carries what the scope is judged by,
        so no inspect is needed first."""
        info = self._in_scope(listed)
        params = _log_params(tail, since, until, follow)
        params["timestamps"] = int(timestamps)
        path = f"/containers/{quote(info.id, safe='')}/logs"
        return LogRecords(self.engine.get_stream("logs", self.project, path, params))

    def image_created(self, image_ids: Iterable[str]) -> dict[str, datetime]:
        """When each image was built: one inspect per distinct image (a project has a few),
        which costs far less than the engine's image list (it sizes every image)."""
        built = {}
        for image_id in sorted(set(image_ids)):
            when = parse_time(self._inspect_image(image_id).get("Created"))
            if when is not None:
                built[image_id] = when
        return built

    def _inspect_image(self, image_id: str) -> Mapping[str, Any]:
        path = f"/images/{quote(image_id, safe='')}/json"
        raw: Mapping[str, Any] = self.engine.get_json("images", self.project, path)
        return raw

    def image_id(self, reference: str) -> str | None:
        def look(api: APIClient) -> str | None:
            found = api.images(name=reference, quiet=True)
            return str(found[0]) if found else None

        return self.engine.call("images", self.project, look, retry=True)

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.engine.call(
            "tag", self.project, lambda api: api.tag(image, repository, tag, force=True)
        )

    def untag(self, reference: str) -> None:
        """Remove one tag; the image stays while another tag or a container uses it."""

        def untag(api: APIClient) -> None:
            import docker.errors

            try:
                api.remove_image(reference, noprune=True)
            except docker.errors.APIError as exc:
                logger.info("keeping image %s: %s", reference, exc.explanation or exc)

        self.engine.call("untag", self.project, untag)

    def _held(self, name: str) -> ContainerInfo:
        path = f"/containers/{quote(name, safe='')}/json"
        return self._in_scope(
            ContainerInfo.from_inspect(self.engine.get_json("inspect", self.project, path))
        )

    def _in_scope(self, info: ContainerInfo) -> ContainerInfo:
        if not self.scope.holds(info):
            raise UnmanagedContainer(
                self.project or info.name,
                f"refusing to touch container {info.name}: it belongs to no configured "
                "Compose project and is not a configured production container",
            )
        return info


class LogRecords:
    """Iterate for (timestamp text, stream, line without the timestamp); ``close()`` ends it."""

    def __init__(self, body: ResponseBody) -> None:
        self._body = body

    def __iter__(self) -> Iterator[tuple[str, str, bytes]]:
        # Whole blocks parsed at once keep a million-line log cheap; the body gives what has
        # arrived, so a followed log's lines still come out as they are written.
        return timestamped_frames(self._body.read)

    def blocks(self) -> Iterator[bytes]:
        """The multiplexed stream itself, as its blocks arrive."""
        return iter(lambda: self._body.read(READ_BLOCK), b"")

    def close(self) -> None:
        self._body.close()


def timestamped_frames(
    read: Callable[[int], bytes], block: int = READ_BLOCK
) -> Iterator[tuple[str, str, bytes]]:
    """(timestamp text, stream, line) of each frame of a multiplexed log stream with
    timestamps (8-byte header: stream, size), parsed from whole blocks. This loop runs once
    per log line, so it keeps to locals and tuples: no object per frame."""
    header, unpack, streams = FRAME_HEADER.size, FRAME_HEADER.unpack_from, STREAMS
    pending = b""
    while data := read(block):
        pending = pending + data if pending else data
        offset, end = 0, len(pending)
        while offset + header <= end:
            kind, size = unpack(pending, offset)
            start = offset + header
            offset = start + size
            if offset > end:
                offset = start - header
                break
            stamp, _, text = pending[start:offset].partition(b" ")
            yield stamp.decode("ascii", "replace"), streams.get(kind, "stdout"), text
        pending = pending[offset:]


def _log_params(
    tail: int | None, since: float | None, until: float | None, follow: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "follow": int(follow),
        "tail": "all" if tail is None else max(0, tail),
    }
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    return params


def _one_off(info: ContainerInfo) -> bool:
    """``docker compose run`` containers belong to the project but are not its services."""
    return info.labels.get(COMPOSE_ONEOFF) == "True"


def _text(output: object) -> str:
    data = output if isinstance(output, bytes) else b""
    return data.decode("utf-8", "replace")


def compose_projects(rows: Iterable[ContainerInfo]) -> dict[str, list[ContainerInfo]]:
    """Containers grouped by their Compose project."""
    grouped: dict[str, list[ContainerInfo]] = {}
    for info in rows:
        project = info.labels.get(COMPOSE_PROJECT)
        if project:
            grouped.setdefault(project, []).append(info)
    return grouped


def all_compose_containers(engine: ContainerEngine) -> list[ContainerInfo]:
    """Every container of every Compose project on the engine, in one list call."""
    filters: Mapping[str, Any] = {"label": [COMPOSE_PROJECT]}
    rows = engine.call("list", "", lambda api: api.containers(all=True, filters=filters))
    return [ContainerInfo.from_list(row) for row in rows]
