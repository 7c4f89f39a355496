"""Where a swarm job may run: the constraints a launch carries, and whether any node meets them.

GPU rows go only to nodes labelled ``sidekick.gpu=true`` (and ask for the
profile's generic resources, when it names some). Before a job is created the
runner checks the constraints against the nodes the manager knows, so a row no
node can take says why on its row instead of waiting silently in the queue.
Only the constraint forms sidekick writes or documents are judged here
(``node.labels.K``, ``node.role``, ``node.hostname``, ``node.id`` with ``==``
or ``!=``); any other is left to the scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sidekick.containers.swarm_records import GPU_LABEL, NodeInfo

GPU_CONSTRAINT = f"node.labels.{GPU_LABEL}==true"
_CONSTRAINT = re.compile(r"^\s*(node\.[A-Za-z0-9_.\-]+)\s*(==|!=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class JobPlacement:
    constraints: tuple[str, ...]
    generic_resources: dict[str, int]
    nano_cpus: int = 0
    memory_bytes: int = 0

    def fits(self, node: NodeInfo) -> bool:
        """The node is big enough for the job's reservations (when idle)."""
        kinds = node.generic_resources
        return (
            node.nano_cpus >= self.nano_cpus
            and node.memory_bytes >= self.memory_bytes
            and all(kinds.get(kind, 0) >= count for kind, count in self.generic_resources.items())
        )

    def wants(self) -> str:
        parts = list(self.constraints)
        if self.nano_cpus:
            parts.append(f"{self.nano_cpus / 1e9:g} CPUs")
        if self.memory_bytes:
            parts.append(f"{self.memory_bytes / 2**30:g} GiB of memory")
        parts.extend(f"{count} {kind}" for kind, count in sorted(self.generic_resources.items()))
        return " and ".join(parts) or "any node"


def placement_for(
    gpu: bool,
    constraints: Sequence[str],
    gpu_resources: dict[str, int],
    reserve: tuple[int, int] = (0, 0),
) -> JobPlacement:
    """The profile's constraints and reservations (nano CPUs, memory bytes), plus the GPU
    label and resources for a GPU row."""
    if not gpu:
        return JobPlacement(tuple(constraints), {}, *reserve)
    chosen = tuple(constraints) if GPU_CONSTRAINT in constraints else (*constraints, GPU_CONSTRAINT)
    return JobPlacement(chosen, dict(gpu_resources), *reserve)


def node_value(node: NodeInfo, field: str) -> str | None:
    """The value a constraint's field has on a node; None for a field not judged here."""
    if field.startswith("node.labels."):
        return node.labels.get(field.removeprefix("node.labels."), "")
    plain = {"node.role": node.role, "node.hostname": node.hostname, "node.id": node.id}
    return plain.get(field)


def satisfies(node: NodeInfo, constraint: str) -> bool:
    """True when the node meets the constraint, or the constraint is one not judged here."""
    parsed = _CONSTRAINT.match(constraint)
    if parsed is None:
        return True
    field, operator, wanted = parsed.groups()
    value = node_value(node, field)
    if value is None:
        return True
    return (value == wanted) is (operator == "==")


def takers(nodes: Iterable[NodeInfo], placement: JobPlacement) -> list[NodeInfo]:
    """The ready nodes that meet every constraint and are big enough."""
    return [
        n
        for n in nodes
        if n.ready and placement.fits(n) and all(satisfies(n, c) for c in placement.constraints)
    ]


def no_taker_reason(nodes: Sequence[NodeInfo], placement: JobPlacement) -> str:
    """Why no node can take the job, naming what it needs and the nodes there are."""
    seen = ", ".join(_describe(n) for n in nodes) or "none"
    return f"no swarm node can take it (needs {placement.wants()}; nodes: {seen})"


def _describe(node: NodeInfo) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "no labels"
    return f"{node.hostname or node.id[:12]} {node.role} {node.state}/{node.availability} {labels}"
