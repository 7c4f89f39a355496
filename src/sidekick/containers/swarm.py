"""The one place that talks to a Swarm manager: services, their tasks and logs, secrets, nodes.

It is the container engine's choke point (same connection, same error codes,
same reconnects) with the calls a manager answers. Services and secrets it
creates carry sidekick's labels (and the instance label when one is
configured); it removes only services and secrets that carry them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from docker.api.client import APIClient

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError, ErrorCode, UnmanagedContainer
from sidekick.containers.labels import LABEL_INSTANCE, LABEL_MANAGED, selector
from sidekick.containers.swarm_records import (
    NodeInfo,
    SecretInfo,
    ServiceInfo,
    SwarmState,
    TaskInfo,
)

logger = logging.getLogger(__name__)


class SwarmEngine(ContainerEngine):
    """Services in job mode, their tasks, logs and secrets, and the cluster's nodes."""

    def swarm_state(self) -> SwarmState:
        """Whether this engine is in a swarm and a manager of it; never raises."""
        try:
            info = self.call("info", "", lambda api: api.info(), retry=True)
        except ContainerError as exc:
            return SwarmState("unreachable", manager=False, error=str(exc))
        swarm = info.get("Swarm") or {}
        return SwarmState(
            str(swarm.get("LocalNodeState", "")),
            manager=bool(swarm.get("ControlAvailable")),
            node_id=str(swarm.get("NodeID", "")),
            error=str(swarm.get("Error", "")),
        )

    def own_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The caller's labels under sidekick's own (managed, and the instance when set)."""
        own = {LABEL_MANAGED: "true"}
        if self.settings.instance:
            own[LABEL_INSTANCE] = self.settings.instance
        return {**labels, **own}

    # --- services --------------------------------------------------------------------

    def create_service(self, project: str, options: Mapping[str, Any]) -> str:
        """Create a service from create_service's keyword arguments; a taken name is
        ALREADY_EXISTS. Never pulls: the image must be on the node that runs the task."""
        created = self.call("create", project, lambda api: api.create_service(**options))
        for warning in created.get("Warnings") or ():
            logger.info("swarm warning for %s: %s", options.get("name"), warning)
        return str(created["ID"])

    def services(self, project: str | None = None) -> list[ServiceInfo]:
        labels = selector(self.settings.instance, project)
        rows = self.call(
            "list", project or "", lambda api: api.services(filters={"label": labels}), retry=True
        )
        return [ServiceInfo.from_api(row) for row in rows]

    def tasks(self, service_id: str, project: str = "") -> list[TaskInfo]:
        """The service's tasks, newest first."""
        rows = self.call(
            "list",
            project,
            lambda api: api.tasks(filters={"service": service_id}),
            retry=True,
        )
        tasks = [TaskInfo.from_api(row) for row in rows]
        return sorted(tasks, key=lambda t: t.created_at or _EPOCH, reverse=True)

    def service_logs(self, service_id: str, project: str = "") -> bytes:
        """Everything the service's tasks printed, stdout and stderr in one stream."""

        def read(api: APIClient) -> bytes:
            chunks = api.service_logs(service_id, stdout=True, stderr=True, follow=False)
            return b"".join(chunks)

        return self.call("logs", project, read, retry=True)

    def end_job(self, service: ServiceInfo) -> None:
        """Stop a job's running task (SIGTERM, then SIGKILL after its stop grace period).

        Removing a job service does not stop its task before Moby 24 (moby/moby#44312:
        the container runs on, orphaned), so the job is first updated to want no
        completions, with a forced update, which shuts down the tasks it had.
        """
        self._refuse_unless_ours(service.labels, service.name, service.project)

        def end(api: APIClient) -> None:
            current = api.inspect_service(service.id)
            spec = current["Spec"]
            template = dict(spec["TaskTemplate"])
            template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
            api.update_service(
                service.id,
                current["Version"]["Index"],
                task_template=template,
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 0}},
            )

        self.call("stop", service.project, end)

    def remove_service(self, service: ServiceInfo) -> None:
        """Remove a labelled service; one already gone is a success."""
        self._refuse_unless_ours(service.labels, service.name, service.project)
        try:
            self.call("remove", service.project, lambda api: api.remove_service(service.id))
        except ContainerError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise

    # --- secrets ---------------------------------------------------------------------

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        project = labels.get("sidekick.project", "")
        created = self.call(
            "create",
            project,
            lambda api: api.create_secret(name, data, labels=self.own_labels(labels)),
        )
        return str(created["ID"])

    def secrets(self, project: str | None = None) -> list[SecretInfo]:
        labels = selector(self.settings.instance, project)
        rows = self.call(
            "list", project or "", lambda api: api.secrets(filters={"label": labels}), retry=True
        )
        return [SecretInfo.from_api(row) for row in rows]

    def remove_secret(self, secret: SecretInfo, project: str = "") -> None:
        """Remove a labelled secret; one already gone is a success, one in use is kept."""
        self._refuse_unless_ours(secret.labels, secret.name, project)
        try:
            self.call("remove", project, lambda api: api.remove_secret(secret.id))
        except ContainerError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                logger.info("secret %s kept for now: %s", secret.name, exc)

    # --- nodes -----------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        rows = self.call("list", "", lambda api: api.nodes(), retry=True)
        return [NodeInfo.from_api(row) for row in rows]

    def _refuse_unless_ours(self, labels: Mapping[str, str], name: str, project: str) -> None:
        instance = self.settings.instance
        ours = labels.get(LABEL_MANAGED) == "true" and (
            not instance or labels.get(LABEL_INSTANCE) == instance
        )
        if not ours:
            raise UnmanagedContainer(
                project or name, f"refusing to remove {name}: sidekick did not create it"
            )


_EPOCH = datetime.min.replace(tzinfo=UTC)
