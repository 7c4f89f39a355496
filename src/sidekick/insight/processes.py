"""What runs inside a container: its processes, the services they are, its ports.

Processes come from the engine's top API, ports from inspect; the ports a
process listens on inside are read from the host's ``/proc/<pid>/net/tcp``
when this process can see the host's PIDs (never by installing or running
anything in the container), and the report says so when it cannot.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidekick.containers.observe import TopTable

logger = logging.getLogger(__name__)

LISTEN_STATE = "0A"
PROC_ROOT = Path("/proc")
# Docker's embedded DNS server (127.0.0.11, on a user-defined network) listens on a
# random TCP port inside every container there; it is the engine's, not the app's.
# /proc writes an IPv4 address as one little-endian hex word, and as the tail of an
# IPv4-mapped address in tcp6.
EMBEDDED_DNS = "0B00007F"
EMBEDDED_DNS_MAPPED = "0000000000000000FFFF0000" + EMBEDDED_DNS


class ServiceKind(enum.Enum):
    WEB_SERVER = "web server"
    DATABASE = "database"
    CACHE = "cache"
    QUEUE = "queue worker"
    RUNTIME = "language runtime"


# The first pattern a process's command matches names it; order matters (gunicorn
# runs under python, so the server is tried before the runtime).
_COMMAND_PATTERNS: tuple[tuple[str, ServiceKind, str], ...] = (
    (r"\bnginx\b", ServiceKind.WEB_SERVER, "nginx"),
    (r"\b(httpd|apache2)\b", ServiceKind.WEB_SERVER, "Apache httpd"),
    (r"\bcaddy\b", ServiceKind.WEB_SERVER, "Caddy"),
    (r"\btraefik\b", ServiceKind.WEB_SERVER, "Traefik"),
    (r"\bhaproxy\b", ServiceKind.WEB_SERVER, "HAProxy"),
    (r"\bgunicorn\b", ServiceKind.WEB_SERVER, "gunicorn"),
    (r"\buvicorn\b", ServiceKind.WEB_SERVER, "uvicorn"),
    (r"\bhypercorn\b", ServiceKind.WEB_SERVER, "hypercorn"),
    (r"\bhttp\.server\b", ServiceKind.WEB_SERVER, "Python http.server"),
    (r"\b(flask|django-admin|manage\.py) .*run", ServiceKind.WEB_SERVER, "Python dev server"),
    (r"\bphp-fpm\b", ServiceKind.WEB_SERVER, "PHP-FPM"),
    (r"\b(puma|unicorn)\b", ServiceKind.WEB_SERVER, "Ruby app server"),
    (r"\b(next|next-server)\b", ServiceKind.WEB_SERVER, "Next.js"),
    (r"\bpostgres\b", ServiceKind.DATABASE, "PostgreSQL"),
    (r"\b(mysqld|mariadbd)\b", ServiceKind.DATABASE, "MySQL/MariaDB"),
    (r"\bmongod\b", ServiceKind.DATABASE, "MongoDB"),
    (r"\bclickhouse", ServiceKind.DATABASE, "ClickHouse"),
    (r"\b(redis-server|valkey-server)\b", ServiceKind.CACHE, "Redis"),
    (r"\bmemcached\b", ServiceKind.CACHE, "memcached"),
    (r"\bcelery\b.*\bworker\b", ServiceKind.QUEUE, "Celery worker"),
    (r"\brq\b.*\bworker\b", ServiceKind.QUEUE, "RQ worker"),
    (r"\b(sidekiq|dramatiq|arq)\b", ServiceKind.QUEUE, "queue worker"),
    (r"\b(rabbitmq|beam\.smp)\b", ServiceKind.QUEUE, "RabbitMQ"),
    (r"\bkafka\b", ServiceKind.QUEUE, "Kafka"),
    (r"(^|/)python[0-9.]*\b", ServiceKind.RUNTIME, "Python"),
    (r"(^|/)node\b", ServiceKind.RUNTIME, "Node.js"),
    (r"(^|/)(deno|bun)\b", ServiceKind.RUNTIME, "JavaScript runtime"),
    (r"(^|/)java\b", ServiceKind.RUNTIME, "Java"),
    (r"(^|/)ruby\b", ServiceKind.RUNTIME, "Ruby"),
    (r"(^|/)php\b", ServiceKind.RUNTIME, "PHP"),
    (r"(^|/)dotnet\b", ServiceKind.RUNTIME, ".NET"),
)
_COMPILED = tuple((re.compile(p), kind, name) for p, kind, name in _COMMAND_PATTERNS)

_WELL_KNOWN_PORTS: Mapping[int, tuple[ServiceKind, str]] = {
    80: (ServiceKind.WEB_SERVER, "HTTP"),
    443: (ServiceKind.WEB_SERVER, "HTTPS"),
    3000: (ServiceKind.WEB_SERVER, "HTTP (3000)"),
    5000: (ServiceKind.WEB_SERVER, "HTTP (5000)"),
    8000: (ServiceKind.WEB_SERVER, "HTTP (8000)"),
    8080: (ServiceKind.WEB_SERVER, "HTTP (8080)"),
    5432: (ServiceKind.DATABASE, "PostgreSQL"),
    3306: (ServiceKind.DATABASE, "MySQL/MariaDB"),
    27017: (ServiceKind.DATABASE, "MongoDB"),
    6379: (ServiceKind.CACHE, "Redis"),
    11211: (ServiceKind.CACHE, "memcached"),
    5672: (ServiceKind.QUEUE, "RabbitMQ"),
    9092: (ServiceKind.QUEUE, "Kafka"),
}


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    user: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "user": self.user, "command": self.command}


@dataclass(frozen=True)
class Service:
    kind: ServiceKind
    name: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "name": self.name, "evidence": self.evidence}


@dataclass(frozen=True)
class Ports:
    """Published (host side), exposed (image) and listening (inside, when readable)."""

    published: tuple[str, ...]
    exposed: tuple[int, ...]
    listening: tuple[int, ...] | None
    listening_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "published": list(self.published),
            "exposed": list(self.exposed),
            "listening": None if self.listening is None else list(self.listening),
            "listening_note": self.listening_note,
        }


def processes_from_top(table: TopTable) -> tuple[Process, ...]:
    return tuple(_process(table, row) for row in table.rows)


def _process(table: TopTable, row: Sequence[str]) -> Process:
    command = table.column(row, "COMMAND") or table.column(row, "CMD")
    return Process(
        pid=_int(table.column(row, "PID")),
        ppid=_int(table.column(row, "PPID")),
        user=table.column(row, "USER") or table.column(row, "UID"),
        command=command,
    )


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def recognise_services(processes: Iterable[Process], ports: Ports) -> tuple[Service, ...]:
    """Services named by the processes first, then by ports no process explained."""
    found: dict[str, Service] = {}
    for process in processes:
        service = _service_of(process)
        if service is not None and service.name not in found:
            found[service.name] = service
    kinds: set[ServiceKind] = {s.kind for s in found.values() if s.kind is not ServiceKind.RUNTIME}
    for port in sorted(set(ports.exposed) | set(ports.listening or ())):
        known = _WELL_KNOWN_PORTS.get(port)
        if known is not None and known[0] not in kinds:
            kinds.add(known[0])
            found.setdefault(known[1], Service(known[0], known[1], f"port {port}"))
    return tuple(found.values())


def _service_of(process: Process) -> Service | None:
    for pattern, kind, name in _COMPILED:
        if pattern.search(process.command):
            return Service(kind, name, f"pid {process.pid}: {process.command[:120]}")
    return None


def read_ports(raw: Mapping[str, Any], listening: tuple[int, ...] | None, note: str = "") -> Ports:
    """Ports from an inspect document, with the listening ones read from /proc (or why not)."""
    return Ports(_published(raw), _exposed(raw), listening, note)


def _published(raw: Mapping[str, Any]) -> tuple[str, ...]:
    bindings = ((raw.get("NetworkSettings") or {}).get("Ports")) or {}
    published = []
    for inside, outside in sorted(bindings.items()):
        for binding in outside or ():
            host = binding.get("HostIp") or "0.0.0.0"  # noqa: S104 - a label, not a bind
            published.append(f"{host}:{binding.get('HostPort')}->{inside}")
    return tuple(published)


def _exposed(raw: Mapping[str, Any]) -> tuple[int, ...]:
    exposed = ((raw.get("Config") or {}).get("ExposedPorts")) or {}
    return tuple(sorted(_int(key.split("/", 1)[0]) for key in exposed))


def listening_ports(
    processes: Sequence[Process], proc_root: Path
) -> tuple[tuple[int, ...] | None, str]:
    """TCP ports in LISTEN inside the container's network namespace, from its first process."""
    if not processes:
        return None, "no running process to read listening ports from"
    first = processes[0]
    here = proc_root / str(first.pid)
    if not _same_process(here, first):
        # The engine's PIDs are the host's; this process sees another PID namespace.
        return None, "the host's /proc is not visible here: listening ports unknown"
    try:
        tables = [(here / "net" / name).read_text() for name in ("tcp", "tcp6")]
    except OSError as exc:
        return None, f"cannot read {here}/net ({exc.strerror}): listening ports unknown"
    return tuple(sorted({p for text in tables for p in _listen_ports(text)})), ""


def _same_process(here: Path, process: Process) -> bool:
    try:
        cmdline = (here / "cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.replace(b"\0", b" ").decode(errors="replace").strip() == process.command.strip()


def _listen_ports(table: str) -> Iterable[int]:
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == LISTEN_STATE:
            address, port = fields[1].rsplit(":", 1)
            if address.upper() not in {EMBEDDED_DNS, EMBEDDED_DNS_MAPPED}:
                yield int(port, 16)
