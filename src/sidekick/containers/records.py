"""Value objects read back from the engine: containers and their labels, and the frame of a
log stream. Log chunks and state-change events are in :mod:`sidekick.containers.streams`,
which a look (``prod status``, ``prod logs``) does not load."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sidekick.containers.labels import LABEL_MANAGED, LABEL_PROJECT, LABEL_RUN

ENDED_STATES = frozenset({"exited", "dead"})
ALIVE_STATES = frozenset({"running", "restarting", "paused"})
STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
FRAME_HEADER = struct.Struct(">BxxxL")

# The list call has no exit code field; its Status text carries it ("Exited (3) 2 minutes ago").
_EXITED = re.compile(r"^Exited \((-?\d+)\)")


class _Labelled:
    """What sidekick's labels say about a container or one of its events."""

    __slots__ = ()
    labels: Mapping[str, str]

    @property
    def project(self) -> str:
        return self.labels.get(LABEL_PROJECT, "")

    @property
    def run_id(self) -> str:
        return self.labels.get(LABEL_RUN, "")


# The default of the mappings below: one object, read and never written (a Mapping).
_NONE: Mapping[str, Any] = {}


class _Container(NamedTuple):
    id: str
    name: str
    state: str
    labels: Mapping[str, str] = _NONE
    image: str = ""
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""
    raw: Mapping[str, Any] = _NONE


class ContainerInfo(_Container, _Labelled):
    """One container as the engine reported it (a list row or a full inspect); ``raw``, the
    engine's own answer, is left out of equality and repr. (A tuple: a look defines no
    dataclass; see sidekick.production.view.)"""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContainerInfo):
            return NotImplemented
        return self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # labels is a mapping, as with a dataclass

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields[:-1], self[:-1], strict=True)
        )
        return f"ContainerInfo({shown})"

    @property
    def managed(self) -> bool:
        return self.labels.get(LABEL_MANAGED) == "true"

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def alive(self) -> bool:
        return self.state in ALIVE_STATES

    @classmethod
    def from_list(cls, raw: Mapping[str, Any]) -> ContainerInfo:
        names = raw.get("Names") or [""]
        state = str(raw.get("State", ""))
        exited = _EXITED.match(str(raw.get("Status", "")))
        return cls(
            id=str(raw["Id"]),
            name=str(names[0]).lstrip("/"),
            state=state,
            labels=dict(raw.get("Labels") or {}),
            image=str(raw.get("Image", "")),
            exit_code=int(exited.group(1)) if exited and state in ENDED_STATES else None,
            created_at=_from_epoch(raw.get("Created")),
            raw=raw,
        )

    @classmethod
    def from_inspect(cls, raw: Mapping[str, Any]) -> ContainerInfo:
        state = raw.get("State") or {}
        config = raw.get("Config") or {}
        status = str(state.get("Status", ""))
        return cls(
            id=str(raw["Id"]),
            name=str(raw.get("Name", "")).lstrip("/"),
            state=status,
            labels=dict(config.get("Labels") or {}),
            image=str(config.get("Image", "")),
            exit_code=int(state.get("ExitCode", 0)) if status in ENDED_STATES else None,
            created_at=parse_time(raw.get("Created")),
            started_at=parse_time(state.get("StartedAt")),
            finished_at=parse_time(state.get("FinishedAt")),
            error=str(state.get("Error") or ""),
            raw=raw,
        )


def parse_time(text: object) -> datetime | None:
    """An engine timestamp; the engine's zero time (year 1) means never."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.year <= 1 else moment


def _from_epoch(value: object) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value, UTC)
