"""The one place that talks to the Docker engine: lifecycle, labels, typed errors, context.

The names below are loaded when first asked for (PEP 562), so that importing one
module of the package, as a look does with the engine, does not define every
other module's classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidekick.containers.engine import ContainerEngine, EngineStatus
    from sidekick.containers.errors import (
        ContainerError,
        ContainerRefused,
        ErrorCode,
        PathNotTranslatable,
        UnmanagedContainer,
        UnsafeContainerSpec,
    )
    from sidekick.containers.records import ContainerInfo
    from sidekick.containers.spec import Bind, ContainerSpec, Limits, container_name
    from sidekick.containers.streams import ContainerEvent, LogChunk, Logs

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

# Where each name lives (its module in this package).
_HOME = {
    "ContainerEngine": "engine",
    "EngineStatus": "engine",
    "ContainerError": "errors",
    "ContainerRefused": "errors",
    "ErrorCode": "errors",
    "PathNotTranslatable": "errors",
    "UnmanagedContainer": "errors",
    "UnsafeContainerSpec": "errors",
    "ContainerInfo": "records",
    "Bind": "spec",
    "ContainerSpec": "spec",
    "Limits": "spec",
    "container_name": "spec",
    "ContainerEvent": "streams",
    "LogChunk": "streams",
    "Logs": "streams",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
