"""The one place that talks to the Docker engine: lifecycle, labels, typed errors, context."""

from __future__ import annotations

from sidekick.containers.engine import ContainerEngine, EngineStatus
from sidekick.containers.errors import (
    ContainerError,
    ContainerRefused,
    ErrorCode,
    PathNotTranslatable,
    UnmanagedContainer,
    UnsafeContainerSpec,
)
from sidekick.containers.records import ContainerEvent, ContainerInfo, LogChunk, Logs
from sidekick.containers.spec import Bind, ContainerSpec, Limits, container_name

__all__ = [
    "Bind",
    "ContainerEngine",
    "ContainerError",
    "ContainerEvent",
    "ContainerInfo",
    "ContainerRefused",
    "ContainerSpec",
    "EngineStatus",
    "ErrorCode",
    "Limits",
    "LogChunk",
    "Logs",
    "PathNotTranslatable",
    "UnmanagedContainer",
    "UnsafeContainerSpec",
    "container_name",
]
