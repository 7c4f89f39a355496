"""How loaded a container is, from one one-shot stats sample.

A one-shot sample has no previous sample inside it, so CPU % is worked out
against the previous sample of the same container when there is one (under
``--watch``), and otherwise as the average since the container started; the
report says which (``cpu_basis``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sidekick.containers.records import parse_time

NANOS = 1e9


@dataclass(frozen=True)
class Load:
    cpu_percent: float | None
    cpu_basis: str
    memory_used: int
    memory_limit: int | None
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    cpu_total_ns: int = 0
    read_at: datetime | None = None

    @property
    def memory_percent(self) -> float | None:
        if not self.memory_limit:
            return None
        return 100.0 * self.memory_used / self.memory_limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_percent": _round(self.cpu_percent),
            "cpu_basis": self.cpu_basis,
            "memory_used": self.memory_used,
            "memory_limit": self.memory_limit,
            "memory_percent": _round(self.memory_percent),
            "net_rx": self.net_rx,
            "net_tx": self.net_tx,
            "block_read": self.block_read,
            "block_write": self.block_write,
            "pids": self.pids,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def read_load(
    stats: Mapping[str, Any],
    started_at: datetime | None,
    host_memory: int | None,
    previous: Load | None = None,
) -> Load:
    """The load in one sample; ``host_memory`` tells a real limit from "no limit"."""
    cpu = stats.get("cpu_stats") or {}
    total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
    read_at = parse_time(stats.get("read"))
    percent, basis = _cpu_percent(total, read_at, started_at, previous)
    memory = stats.get("memory_stats") or {}
    limit = int(memory.get("limit") or 0)
    rx, tx = _network(stats.get("networks") or {})
    block_read, block_write = _block_io(stats.get("blkio_stats") or {})
    return Load(
        cpu_percent=percent,
        cpu_basis=basis,
        memory_used=memory_used(memory),
        memory_limit=limit if limit and (host_memory is None or limit < host_memory) else None,
        net_rx=rx,
        net_tx=tx,
        block_read=block_read,
        block_write=block_write,
        pids=int((stats.get("pids_stats") or {}).get("current") or 0),
        cpu_total_ns=total,
        read_at=read_at,
    )


def _cpu_percent(
    total: int, read_at: datetime | None, started_at: datetime | None, previous: Load | None
) -> tuple[float | None, str]:
    """Percent of one CPU, as ``docker stats`` counts it (200 % is two cores busy)."""
    if previous is not None and previous.read_at and read_at and read_at > previous.read_at:
        elapsed = (read_at - previous.read_at).total_seconds()
        used = max(0, total - previous.cpu_total_ns) / NANOS
        return 100.0 * used / elapsed, f"over the last {elapsed:.1f} s"
    if started_at and read_at and read_at > started_at:
        elapsed = (read_at - started_at).total_seconds()
        return 100.0 * total / NANOS / elapsed, "average since start"
    return None, "unknown"


def memory_used(memory: Mapping[str, Any]) -> int:
    """Usage without the page cache the kernel can drop, as ``docker stats`` shows it."""
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    # cgroup v1 names it total_inactive_file, v2 inactive_file.
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, usage - int(cache or 0))


def _network(networks: Mapping[str, Any]) -> tuple[int, int]:
    rx = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
    tx = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
    return rx, tx


def _block_io(blkio: Mapping[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in blkio.get("io_service_bytes_recursive") or ():
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += int(entry.get("value") or 0)
        elif op == "write":
            write += int(entry.get("value") or 0)
    return read, write
