"""Typed errors of the container lifecycle service.

:class:`ContainerError` is what the Docker engine said, sorted into a few codes
callers can act on; :class:`ContainerRefused` and its subclasses are what the
service itself refused to do, before asking the engine anything.
"""

from __future__ import annotations

import enum

from sidekick.errors import SidekickError


class ErrorCode(enum.Enum):
    """What went wrong, in terms a caller can act on."""

    NOT_FOUND = "not found"
    ALREADY_EXISTS = "already exists"
    START_FAILED = "start failed"
    STOP_FAILED = "stop failed"
    NETWORK_ERROR = "engine unreachable"
    IMAGE_NOT_FOUND = "image not found"
    PERMISSION_DENIED = "permission denied"


class ContainerError(SidekickError):
    """The engine refused or failed an operation; ``engine_message`` is its own words."""

    def __init__(
        self,
        code: ErrorCode,
        project: str,
        engine_message: str,
        socket: str = "",
        socket_gid: int | None = None,
    ) -> None:
        super().__init__(code, project, engine_message, socket, socket_gid)
        self.code, self.project, self.engine_message = code, project, engine_message
        self.socket, self.socket_gid = socket, socket_gid

    def message(self) -> str:
        text = f"{self.project or 'docker'}: {self.code.value}: {self.engine_message}"
        if self.code is ErrorCode.PERMISSION_DENIED:
            return f"{text}. {self.remedy()}"
        return text

    def remedy(self) -> str:
        """What a person changes so the socket can be opened."""
        where = self.socket or "the Docker socket"
        gid = "GID" if self.socket_gid is None else str(self.socket_gid)
        return (
            f"This process cannot open {where}: add its user to the socket's group {gid} "
            f'(in Compose: group_add: ["{gid}"]), or point containers.docker_host '
            "at a socket it may open"
        )


class ContainerRefused(SidekickError):
    """The service refused an operation before asking the engine: a rule would be broken."""

    def __init__(self, project: str, problem: str) -> None:
        super().__init__(project, problem)
        self.project, self.problem = project, problem

    def message(self) -> str:
        return f"{self.project or 'docker'}: {self.problem}"


class UnmanagedContainer(ContainerRefused):
    """The container lacks sidekick's label and was not configured by name: hands off."""


class UnsafeContainerSpec(ContainerRefused):
    """A container would get a mount, namespace or setting the rules forbid, or a bad limit."""


class PathNotTranslatable(SidekickError):
    """A path inside the daemon's container has no host path an engine bind could use."""

    def __init__(self, path: str, container: str, mounts: tuple[str, ...] = ()) -> None:
        super().__init__(path, container, mounts)
        self.path, self.container, self.mounts = path, container, mounts

    def message(self) -> str:
        mounted = ", ".join(self.mounts) if self.mounts else "none"
        return (
            f"{self.path} is not on any mount of the daemon's container {self.container}, "
            f"so a sibling container cannot be given it; mount its directory into the "
            f"daemon's container from the host (mounted now: {mounted})"
        )
