"""Shared pieces of the container tests: names, labels, sweeping, waiting."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import docker
from docker.api.client import APIClient
from docker.constants import DEFAULT_UNIX_SOCKET

from tests.needs import missing

BASE_IMAGE = os.environ.get("SIDEKICK_BASE_IMAGE", "sidekick-base:bookworm")
TEST_LABEL = "sidekick-tests.session"
SESSION = f"t{uuid.uuid4().hex[:8]}"


def raw_labels() -> dict[str, str]:
    """The label of containers a test makes directly with the SDK (not sidekick's label)."""
    return {TEST_LABEL: SESSION}


def engine_socket_path() -> str:
    """The engine's Unix socket, as the SDK would find it."""
    url = os.environ.get("DOCKER_HOST") or DEFAULT_UNIX_SOCKET
    for prefix in ("http+unix://", "unix://"):
        if url.startswith(prefix):
            return url[len(prefix) :]
    missing(f"the engine is not on a Unix socket ({url})")


def sweep(api: APIClient, labels: list[str]) -> None:
    for row in api.containers(all=True, filters={"label": labels}):
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(row["Id"], force=True, v=True)


def project_dir(root: Path, name: str = "project") -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory
