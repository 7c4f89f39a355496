"""Which container runtimes this host has, and whether each can be used right now.

Installed means the program is on PATH (for Docker, the engine's socket also
counts). Usable means it reaches its engine or cluster and is permitted to
use it. Docker is asked through :class:`ContainerEngine` (the SDK); podman and
kubectl through their own CLIs, as argument lists with a time limit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ErrorCode

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
RUNTIME_NAMES = ("docker", "podman", "kubectl")
_DENIED_WORDS = ("permission denied", "forbidden", "unauthorized")


@dataclass(frozen=True)
class Runtime:
    name: str
    path: str = ""
    reachable: bool = False
    permitted: bool = False
    detail: str = ""

    @property
    def installed(self) -> bool:
        return bool(self.path)

    @property
    def usable(self) -> bool:
        return self.reachable and self.permitted

    def summary(self) -> str:
        if not self.installed:
            return "not installed"
        if self.usable:
            return f"usable ({self.detail})" if self.detail else "usable"
        state = "not permitted" if self.reachable else "not reachable"
        return f"{state}: {self.detail}" if self.detail else state


def probe_runtimes(
    engine: ContainerEngine | None = None, search_path: str | None = None
) -> tuple[Runtime, ...]:
    """Every known runtime, probed; ``search_path`` replaces PATH (tests, odd hosts)."""
    return (
        probe_docker(engine or ContainerEngine(), search_path),
        probe_podman(search_path),
        probe_kubectl(search_path),
    )


def probe_docker(engine: ContainerEngine, search_path: str | None = None) -> Runtime:
    cli = shutil.which("docker", path=search_path) or ""
    socket = engine.socket
    has_socket = socket.startswith("unix://") and os.path.exists(socket.removeprefix("unix://"))
    if not cli and not has_socket:
        return Runtime("docker")
    status = engine.ping()
    where = cli or socket
    if status.ok:
        return Runtime("docker", where, True, True, status.detail)
    denied = status.code is ErrorCode.PERMISSION_DENIED
    return Runtime("docker", where, denied, False, status.detail)


def probe_podman(search_path: str | None = None) -> Runtime:
    path = shutil.which("podman", path=search_path) or ""
    if not path:
        return Runtime("podman")
    result = _run([path, "info", "--format", "json"], search_path)
    if result.returncode == 0:
        return Runtime("podman", path, True, True, "podman info answers")
    return _failed("podman", path, result)


def probe_kubectl(search_path: str | None = None) -> Runtime:
    path = shutil.which("kubectl", path=search_path) or ""
    if not path:
        return Runtime("kubectl")
    timeout = f"--request-timeout={int(PROBE_TIMEOUT)}s"
    version = _run([path, "version", "-o", "json", timeout], search_path)
    server = _server_version(version.stdout)
    if not server:
        return _failed("kubectl", path, version)
    allowed = _run([path, "auth", "can-i", "create", "pods/exec", timeout], search_path)
    if allowed.stdout.strip() == "yes":
        return Runtime("kubectl", path, True, True, f"cluster {server}")
    why = _last_line(allowed) or "may not create pods/exec"
    return Runtime("kubectl", path, True, False, f"cluster {server}: {why}")


def _server_version(stdout: str) -> str:
    try:
        data = json.loads(stdout or "{}")
    except json.JSONDecodeError:
        return ""
    server = data.get("serverVersion") if isinstance(data, dict) else None
    return str(server.get("gitVersion", "")) if isinstance(server, dict) else ""


def _failed(name: str, path: str, result: subprocess.CompletedProcess[str]) -> Runtime:
    why = _last_line(result) or f"exit status {result.returncode}"
    denied = any(word in why.lower() for word in _DENIED_WORDS)
    return Runtime(name, path, denied, False, why)


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
    return next((line for line in reversed(lines) if line), "")


def _run(argv: Sequence[str], search_path: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if search_path is not None:
        env["PATH"] = search_path
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"no answer in {PROBE_TIMEOUT} s")
    except OSError as exc:
        return subprocess.CompletedProcess(list(argv), 126, "", str(exc))
