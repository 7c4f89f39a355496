"""Value objects read back from a Swarm manager: services, their tasks, nodes, secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sidekick.containers.labels import LABEL_MANAGED
from sidekick.containers.records import _Labelled as Labelled

# Not Swarm's own: a task the manager still calls running on a node that is down. The
# job has no restart policy, so it will never be heard from again.
NODE_LOST = "node-lost"
# A job's task in one of these states will never run again (the runner never retries).
TASK_ENDED = frozenset(
    {"complete", "failed", "rejected", "shutdown", "orphaned", "remove", NODE_LOST}
)
# States before the task's container exists: the scheduler is still looking for a node.
TASK_WAITING = frozenset({"new", "pending", "allocated", "assigned"})
GPU_LABEL = "sidekick.gpu"


@dataclass(frozen=True)
class SwarmState:
    """What this engine says about its swarm membership."""

    node_state: str
    manager: bool
    node_id: str = ""
    error: str = ""

    @property
    def active(self) -> bool:
        return self.node_state == "active"


@dataclass(frozen=True)
class ServiceInfo(Labelled):
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def managed(self) -> bool:
        return self.labels.get(LABEL_MANAGED) == "true"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ServiceInfo:
        spec = raw.get("Spec") or {}
        return cls(
            id=str(raw["ID"]),
            name=str(spec.get("Name", "")),
            labels=dict(spec.get("Labels") or {}),
            created_at=parse_time(raw.get("CreatedAt")),
        )


@dataclass(frozen=True)
class TaskInfo:
    id: str
    state: str
    desired_state: str = ""
    exit_code: int | None = None
    error: str = ""
    message: str = ""
    node_id: str = ""
    created_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.state in TASK_ENDED

    @property
    def waiting(self) -> bool:
        return self.state in TASK_WAITING

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> TaskInfo:
        status = raw.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        # A task that never got a container still reports ExitCode 0: that is no exit.
        code = container.get("ExitCode") if container.get("ContainerID") else None
        return cls(
            id=str(raw["ID"]),
            state=str(status.get("State", "")),
            desired_state=str(raw.get("DesiredState", "")),
            exit_code=int(code) if isinstance(code, int) else None,
            error=str(status.get("Err") or ""),
            message=str(status.get("Message") or ""),
            node_id=str(raw.get("NodeID") or ""),
            created_at=parse_time(raw.get("CreatedAt")),
        )


@dataclass(frozen=True)
class NodeInfo:
    id: str
    hostname: str
    role: str
    state: str
    availability: str
    labels: Mapping[str, str] = field(default_factory=dict)
    address: str = ""
    nano_cpus: int = 0
    memory_bytes: int = 0
    generic_resources: Mapping[str, int] = field(default_factory=dict)

    @property
    def gpu(self) -> bool:
        return self.labels.get(GPU_LABEL) == "true"

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.availability == "active"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> NodeInfo:
        spec = raw.get("Spec") or {}
        status = raw.get("Status") or {}
        resources = (raw.get("Description") or {}).get("Resources") or {}
        return cls(
            id=str(raw["ID"]),
            hostname=str((raw.get("Description") or {}).get("Hostname", "")),
            role=str(spec.get("Role", "")),
            state=str(status.get("State", "")),
            availability=str(spec.get("Availability", "")),
            labels=dict(spec.get("Labels") or {}),
            address=str(status.get("Addr", "")),
            nano_cpus=int(resources.get("NanoCPUs") or 0),
            memory_bytes=int(resources.get("MemoryBytes") or 0),
            generic_resources=_generic(resources.get("GenericResources") or []),
        )


@dataclass(frozen=True)
class SecretInfo:
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> SecretInfo:
        spec = raw.get("Spec") or {}
        return cls(str(raw["ID"]), str(spec.get("Name", "")), dict(spec.get("Labels") or {}))


def _generic(entries: list[Mapping[str, Any]]) -> dict[str, int]:
    """A node's generic resources by kind: a discrete count, or how many named ones."""
    counts: dict[str, int] = {}
    for entry in entries:
        discrete = entry.get("DiscreteResourceSpec")
        named = entry.get("NamedResourceSpec")
        if discrete:
            kind = str(discrete.get("Kind", ""))
            counts[kind] = counts.get(kind, 0) + int(discrete.get("Value") or 0)
        elif named:
            kind = str(named.get("Kind", ""))
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def parse_time(text: object) -> datetime | None:
    """Swarm's times are UTC with nanoseconds, more digits than fromisoformat takes."""
    if not isinstance(text, str) or not text:
        return None
    head, _, rest = text.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(head.removesuffix("Z"))
    except ValueError:
        return None
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    return parsed.replace(microsecond=micro, tzinfo=UTC)
