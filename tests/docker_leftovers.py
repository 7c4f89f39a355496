"""The Docker objects a test session made, found by the labels and names it gave them.

Every test that makes an object on the engine labels or names it after its
session: ``sidekick-tests.session`` (containers and images made with the SDK),
``sidekick.instance`` (agents the daemon under test starts), compose's project
label (the integration tests' projects) and the integration images' repository.
Other sessions on the same engine (parallel runs, a person's own containers) are
never matched, so a sweep at the end of a session touches only its own leftovers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, NotFound

logger = logging.getLogger(__name__)

TEST_LABEL = "sidekick-tests.session"
INSTANCE_LABEL = "sidekick.instance"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
KINDS = ("containers", "networks", "volumes", "images")


@dataclass(frozen=True)
class Sessions:
    """The ids this session's tests label their objects with."""

    containers: str
    compose: str
    image_repository: str

    def owns(self, labels: Mapping[str, str] | None, names: Iterable[str] = ()) -> bool:
        labels = labels or {}
        if labels.get(TEST_LABEL) == self.containers:
            return True
        if labels.get(INSTANCE_LABEL, "").startswith(self.containers):
            return True
        if labels.get(COMPOSE_PROJECT_LABEL, "").startswith(self.compose):
            return True
        return any(name.split(":", 1)[0] == self.image_repository for name in names)


@dataclass
class Inventory:
    """What the engine holds: per kind, object id to a readable name."""

    objects: dict[str, dict[str, str]] = field(default_factory=dict)

    def counts(self) -> str:
        return ", ".join(f"{len(self.objects.get(kind, {}))} {kind}" for kind in KINDS)

    def names(self) -> list[str]:
        return [f"{kind[:-1]} {name}" for kind in KINDS for name in self.objects[kind].values()]


def engine_or_none() -> docker.DockerClient | None:
    """A client when an engine answers at once; the session has no Docker objects otherwise."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception:  # no SDK config, no socket, no engine: nothing to check
        return None
    return client


def inventory(client: docker.DockerClient, sessions: Sessions | None = None) -> Inventory:
    """Everything on the engine, or only what the sessions own."""
    found = Inventory()
    for kind, listing in _listings(client).items():
        found.objects[kind] = {
            obj_id: name
            for obj_id, name, labels, names in listing()
            if sessions is None or sessions.owns(labels, names)
        }
    return found


Row = tuple[str, str, Mapping[str, str] | None, list[str]]


def _listings(client: docker.DockerClient) -> dict[str, Callable[[], list[Row]]]:
    """One list call per kind, from the list's own rows: inspecting each object
    would race with other sessions removing theirs."""
    api = client.api

    def containers() -> list[Row]:
        return [
            (c["Id"], ",".join(n.lstrip("/") for n in c.get("Names") or []), c.get("Labels"), [])
            for c in api.containers(all=True)
        ]

    def networks() -> list[Row]:
        return [(n["Id"], n["Name"], n.get("Labels"), []) for n in api.networks()]

    def volumes() -> list[Row]:
        found = api.volumes().get("Volumes") or []
        return [(v["Name"], v["Name"], v.get("Labels"), []) for v in found]

    def images() -> list[Row]:
        rows = []
        for image in api.images():
            tags = [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]
            rows.append((image["Id"], ",".join(tags) or image["Id"], image.get("Labels"), tags))
        return rows

    return {"containers": containers, "networks": networks, "volumes": volumes, "images": images}


def remove(client: docker.DockerClient, leftovers: Inventory) -> None:
    """Remove the leftovers: containers first, then what they used."""
    removers: dict[str, Callable[[str], object]] = {
        "containers": lambda name: client.containers.get(name).remove(force=True, v=True),
        "networks": lambda name: client.networks.get(name).remove(),
        "volumes": lambda name: client.volumes.get(name).remove(force=True),
        # Untag only, keeping the parent layers: they are the next build's cache.
        "images": lambda name: client.images.remove(name, noprune=True),
    }
    for kind in KINDS:
        for obj_id, name in leftovers.objects.get(kind, {}).items():
            targets = name.split(",") if kind == "images" else [obj_id]
            for target in targets:
                _quietly(removers[kind], target)


def _quietly(remover: Callable[[str], object], target: str) -> None:
    try:
        remover(target)
    except NotFound:
        logger.debug("%s: already gone", target)
    except APIError as exc:
        logger.warning("could not remove leftover %s: %s", target, exc)
