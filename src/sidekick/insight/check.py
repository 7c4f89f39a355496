"""``sidekick dockerfile --check``: build the candidate, start it, see it answer, clean up.

A web project passes when its port answers HTTP (any status below 500) on a
port published to 127.0.0.1; a command-line project when its process is still
up after a settling time. The container and every image the build made are
removed whatever the outcome.
"""

from __future__ import annotations

import http.client
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sidekick.containers import observe
from sidekick.containers.build import (
    BuildFailed,
    build_image,
    remove_built,
    remove_trial,
    start_trial,
)
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.insight.detect import BuildPlan
from sidekick.insight.generate import Generated

logger = logging.getLogger(__name__)

CHECK_LABEL = "sidekick.dockerfile-check"
ANSWER_TIMEOUT = 60.0
SETTLE = 3.0
POLL = 0.25


@dataclass
class CheckResult:
    passed: bool
    stage: str
    detail: str
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "stage": self.stage,
            "detail": self.detail,
            "log": self.log[-30:],
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Checker:
    engine: ContainerEngine
    base_image: str | None = None
    answer_timeout: float = ANSWER_TIMEOUT
    settle: float = SETTLE
    labels: dict[str, str] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def check(self, plan: BuildPlan, generated: Generated) -> CheckResult:
        began = self.monotonic()
        result = self._build_and_run(plan, generated)
        result.seconds = self.monotonic() - began
        return result

    def _build_and_run(self, plan: BuildPlan, generated: Generated) -> CheckResult:
        tag = f"sidekick-dockerfile-check:{uuid.uuid4().hex[:10]}"
        labels = {CHECK_LABEL: tag, **self.labels}
        try:
            built = build_image(
                self.engine,
                plan.directory,
                generated.dockerfile,
                tag,
                ignore=generated.dockerignore.split(),
                build_args=self._build_args(),
                labels=labels,
            )
        except BuildFailed as exc:
            return CheckResult(False, "build", exc.error, list(exc.log))
        except ContainerError as exc:
            return CheckResult(False, "build", str(exc))
        try:
            return self._run(plan, tag, labels, built.log)
        finally:
            remove_built(self.engine, built)

    def _build_args(self) -> dict[str, str]:
        if not self.base_image:
            return {}
        return {"BASE_IMAGE": self.base_image, "RUNTIME_IMAGE": self.base_image}

    def _run(
        self, plan: BuildPlan, tag: str, labels: dict[str, str], log: list[str]
    ) -> CheckResult:
        port = plan.port
        container = start_trial(self.engine, tag, port, labels)
        try:
            if port is None:
                return self._stays_up(container, log)
            return self._answers(container, port, log)
        finally:
            remove_trial(self.engine, container)

    def _answers(self, container: str, port: int, log: list[str]) -> CheckResult:
        host_port = self._host_port(container, port)
        deadline = self.monotonic() + self.answer_timeout
        while self.monotonic() < deadline:
            ended = self._ended(container)
            if ended is not None:
                return ended
            status = _http_status(host_port)
            if status is not None and status < 500:
                return CheckResult(True, "run", f"answered HTTP {status} on port {port}", log)
            self.sleep(POLL)
        tail = observe.log_tail(self.engine, container, 20)
        detail = f"nothing answered on port {port} within {self.answer_timeout:g} s"
        return CheckResult(False, "run", detail, [*log, *tail])

    def _stays_up(self, container: str, log: list[str]) -> CheckResult:
        self.sleep(self.settle)
        ended = self._ended(container)
        if ended is not None:
            return ended
        return CheckResult(True, "run", f"still running after {self.settle:g} s", log)

    def _ended(self, container: str) -> CheckResult | None:
        raw = observe.inspect_raw(self.engine, container)
        state = raw.get("State") or {}
        if state.get("Running"):
            return None
        tail = observe.log_tail(self.engine, container, 20)
        detail = f"the container exited with code {state.get('ExitCode')}"
        if state.get("Error"):
            detail += f": {state['Error']}"
        return CheckResult(False, "start", detail, list(tail))

    def _host_port(self, container: str, port: int) -> int:
        raw = observe.inspect_raw(self.engine, container)
        bindings = (raw.get("NetworkSettings") or {}).get("Ports") or {}
        return int(bindings[f"{port}/tcp"][0]["HostPort"])


def _http_status(port: int) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
