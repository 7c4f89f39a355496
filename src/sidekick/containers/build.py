"""Build an image from a directory and a Dockerfile held in memory, and remove it after.

The Dockerfile and its ignore patterns travel in the build context, so a
candidate Dockerfile is built before it is ever written into the project.
Every image the build made (its stages too, which the classic builder leaves
untagged) is remembered, so :func:`remove_built` takes away exactly those and
never an image that was there before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.api.client import APIClient
from docker.utils.build import tar

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.errors import SidekickError

logger = logging.getLogger(__name__)

DOCKERFILE_NAME = "Dockerfile.sidekick-candidate"
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$")
LOG_LINES = 30


@dataclass(eq=False)
class BuildFailed(SidekickError):
    """The engine could not build the image; ``log`` is the build's last lines."""

    tag: str
    error: str
    log: tuple[str, ...] = ()

    def message(self) -> str:
        tail = "\n".join(self.log[-LOG_LINES:])
        return f"building {self.tag} failed: {self.error}" + (f"\n{tail}" if tail else "")


@dataclass
class BuiltImage:
    tag: str
    made: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def build_image(
    engine: ContainerEngine,
    context: Path,
    dockerfile: str,
    tag: str,
    *,
    ignore: Iterable[str] = (),
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> BuiltImage:
    """Build ``dockerfile`` over ``context``; a failure removes what it made and raises."""
    before = _image_ids(engine)
    archive = tar(context, exclude=list(ignore), dockerfile=(DOCKERFILE_NAME, dockerfile))
    built = BuiltImage(tag)

    def run(api: APIClient) -> None:
        stream = api.build(
            # tar() made the archive a temporary file; the stubs' answer also allows the
            # fileobj a caller may pass in, which build's IO[bytes] does not cover.
            fileobj=archive,  # type: ignore[arg-type]
            custom_context=True,
            dockerfile=DOCKERFILE_NAME,
            tag=tag,
            buildargs=dict(build_args or {}),
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            _take(built, chunk, before)

    try:
        engine.call("build", "", run)
    except (ContainerError, BuildFailed):
        remove_built(engine, built)
        raise
    finally:
        archive.close()
    return built


def _take(built: BuiltImage, chunk: Mapping[str, Any], before: set[str]) -> None:
    if "error" in chunk:
        raise BuildFailed(built.tag, str(chunk["error"]).strip(), tuple(built.log))
    text = str(chunk.get("stream", ""))
    for line in text.splitlines():
        if line.strip():
            built.log.append(line.rstrip())
        step = _STEP_IMAGE.match(line)
        if step and not any(known.startswith(step.group(1)) for known in before):
            built.made.append(step.group(1))


def remove_built(engine: ContainerEngine, built: BuiltImage) -> None:
    """The tag, then every image the build made, newest first; shared ones are kept."""
    for image in [built.tag, *reversed(built.made)]:
        _remove_image(engine, image)


def _remove_image(engine: ContainerEngine, image: str) -> None:
    try:
        engine.call("remove image", "", lambda api: api.remove_image(image, force=False))
    except ContainerError as exc:
        logger.debug("image %s kept: %s", image, exc)


def _image_ids(engine: ContainerEngine) -> set[str]:
    ids = engine.call("images", "", lambda api: api.images(all=True, quiet=True), retry=True)
    return {str(i).removeprefix("sha256:") for i in ids}


def start_trial(
    engine: ContainerEngine, image: str, port: int | None, labels: Mapping[str, str]
) -> str:
    """Create and start a throwaway container of ``image``, ``port`` published on 127.0.0.1."""

    def create(api: APIClient) -> str:
        host_config = api.create_host_config(
            port_bindings={port: ("127.0.0.1",)} if port else None,
            security_opt=["no-new-privileges:true"],
        )
        created = api.create_container(
            image,
            labels=dict(labels),
            ports=[port] if port else None,
            host_config=host_config,
            detach=True,
        )
        return str(created["Id"])

    container = engine.call("create", "", create)
    try:
        engine.call("start", "", lambda api: api.start(container))
    except ContainerError:
        remove_trial(engine, container)
        raise
    return container


def remove_trial(engine: ContainerEngine, container: str) -> None:
    engine.call("remove", "", lambda api: api.remove_container(container, force=True))
