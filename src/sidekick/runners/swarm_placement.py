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
class Placement:
    constraints: tuple[str, ...]
    generic_resources: dict[str, int]


def placement_for(
    gpu: bool, constraints: Sequence[str], gpu_resources: dict[str, int]
) -> Placement:
    """The profile's constraints, plus the GPU label and resources for a GPU row."""
    if not gpu:
        return Placement(tuple(constraints), {})
    chosen = tuple(constraints) if GPU_CONSTRAINT in constraints else (*constraints, GPU_CONSTRAINT)
    return Placement(chosen, dict(gpu_resources))


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


def takers(nodes: Iterable[NodeInfo], constraints: Sequence[str]) -> list[NodeInfo]:
    """The ready nodes that meet every constraint."""
    return [n for n in nodes if n.ready and all(satisfies(n, c) for c in constraints)]


def no_taker_reason(nodes: Sequence[NodeInfo], constraints: Sequence[str]) -> str:
    """Why no node can take the job, naming the constraints and the nodes there are."""
    wanted = " and ".join(constraints) or "any node"
    seen = ", ".join(_describe(n) for n in nodes) or "none"
    return f"no swarm node can take it (needs {wanted}; nodes: {seen})"


def _describe(node: NodeInfo) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "no labels"
    return f"{node.hostname or node.id[:12]} {node.role} {node.state}/{node.availability} {labels}"
