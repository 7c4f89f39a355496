"""Host path translation for a daemon that itself runs in a container.

A bind mount's source is read by the engine on the host, so a path the daemon
sees inside its own container must be rewritten to where that directory lives
on the host. The daemon's own mounts (inspected once at start) say how; a path
on no mount lives only in the daemon's container and cannot be shared.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sidekick.containers.errors import PathNotTranslatable

logger = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
CGROUP = Path("/proc/self/cgroup")

# Docker mounts each container's /etc/hostname, /etc/hosts and /etc/resolv.conf
# from /var/lib/docker/containers/<id>/, which names the container from inside
# on cgroup v1 and v2 alike.
_CONTAINER_FILE = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)\b")
_CGROUP_ID = re.compile(r"(?:docker[-/])([0-9a-f]{64})")


@dataclass(frozen=True)
class MountPoint:
    """One mount of the daemon's container: where it is on the host, where inside."""

    source: str
    destination: str
    type: str = "bind"

    @classmethod
    def from_inspect(cls, raw: Mapping[str, Any]) -> MountPoint:
        return cls(
            str(raw.get("Source", "")), str(raw.get("Destination", "")), str(raw.get("Type", ""))
        )


class HostPaths:
    """Rewrites daemon-side paths to host paths; the identity outside a container."""

    def __init__(self, container: str | None = None, mounts: Iterable[MountPoint] = ()) -> None:
        self.container = container
        # The deepest mount wins: /work/projects is more specific than /work.
        self.mounts = sorted(
            (m for m in mounts if m.source and m.destination),
            key=lambda m: len(PurePosixPath(m.destination).parts),
            reverse=True,
        )

    @property
    def in_container(self) -> bool:
        return self.container is not None

    def to_host(self, path: Path | str) -> Path:
        """The host path of ``path``; raises PathNotTranslatable when no mount holds it."""
        inside = PurePosixPath(_normal(str(path)))
        if self.container is None:
            return Path(str(inside))
        for mount in self.mounts:
            destination = PurePosixPath(_normal(mount.destination))
            if inside == destination or destination in inside.parents:
                return Path(mount.source) / inside.relative_to(destination)
        raise PathNotTranslatable(
            str(path), self.container, tuple(f"{m.source}:{m.destination}" for m in self.mounts)
        )

    def describe(self) -> str:
        if self.container is None:
            return "the daemon runs on the host: paths are used as they are"
        listed = ", ".join(f"{m.destination} <- {m.source}" for m in self.mounts) or "no mounts"
        return f"the daemon runs in container {self.container[:12]}: {listed}"


def _normal(text: str) -> str:
    return posixpath.normpath(text) if text else text


def own_container_id(mountinfo: str | None = None, cgroup: str | None = None) -> str | None:
    """The id of the container this process runs in, or None on a host."""
    mountinfo = _read(MOUNTINFO) if mountinfo is None else mountinfo
    found = _CONTAINER_FILE.search(mountinfo)
    if found:
        return found.group(1)
    cgroup = _read(CGROUP) if cgroup is None else cgroup
    found = _CGROUP_ID.search(cgroup)
    return found.group(1) if found else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def mounts_of(inspected: Mapping[str, Any]) -> Sequence[MountPoint]:
    """The mounts of an inspected container, as the engine reported them."""
    return [MountPoint.from_inspect(raw) for raw in inspected.get("Mounts") or ()]
