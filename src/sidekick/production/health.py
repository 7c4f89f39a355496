"""Waiting for production to be healthy, and the smoke checks that follow.

A container counts as healthy when it runs and its health check says healthy,
or when it runs and has no health check. The wait polls the one labelled list
call; only when it gives up does it inspect the failing container for the last
probe's output, which is what a person needs to read.
"""

from __future__ import annotations

import html
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from sidekick.containers.errors import ContainerError
from sidekick.containers.records import ContainerInfo
from sidekick.containers.scope import ScopedEngine, service_of
from sidekick.production.settings import SmokeCheck
from sidekick.production.status import health_of
from sidekick.production.target import Target

logger = logging.getLogger(__name__)

POLL = 0.25


REASON_LIMIT = 200
# What the audit log keeps of a probe's or a smoke check's output: its end, where a
# traceback says what went wrong; a chatty check must not grow the store without bound.
REPORT_LIMIT = 8192
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """``detail`` is one bounded line; ``output`` the whole probe output it was cut from."""

    healthy: bool
    detail: str
    output: str = ""

    def report(self) -> str:
        return report(self.detail, self.output)


def report(detail: str, output: str, limit: int = REPORT_LIMIT) -> str:
    """For the audit log: the one-line reason, then the output a person reads it from
    (its last ``limit`` characters)."""
    output = output.strip()
    if not output or output == detail:
        return detail
    if len(output) > limit:
        output = "..." + output[-(limit - 3) :]
    return f"{detail}\n{output}"


def wait_healthy(
    target: Target,
    scoped: ScopedEngine,
    services: tuple[str, ...],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Healthy within ``timeout``, or why not (the failing probe's output when there is one)."""
    deadline = clock() + timeout
    while True:
        rows = target.select(scoped.list(), services)
        problem = _problem(rows, services or _all(target))
        if problem is None:
            return Verdict(True, f"{len(rows)} container(s) healthy")
        if clock() >= deadline:
            why, output = _explain(scoped, problem)
            return Verdict(False, f"health check timed out after {timeout:g} s: {why}", output)
        sleep(POLL)


def _all(target: Target) -> tuple[str, ...]:
    return target.settings.services or (target.compose.services if target.compose else ())


def _problem(rows: list[ContainerInfo], services: tuple[str, ...]) -> ContainerInfo | str | None:
    present = {service_of(r) for r in rows}
    missing = [s for s in services if s not in present]
    if missing:
        return f"no container for {', '.join(missing)}"
    return next((r for r in rows if not _healthy(r)), None)


def _healthy(info: ContainerInfo) -> bool:
    return info.state == "running" and health_of(info) in ("healthy", "")


def _explain(scoped: ScopedEngine, problem: ContainerInfo | str) -> tuple[str, str]:
    """The one-line reason and the last probe's whole output (a traceback is many lines:
    its last one says what went wrong)."""
    if isinstance(problem, str):
        return problem, ""
    health = health_of(problem) or "no health check"
    text = f"{problem.name} is {problem.state} ({health})"
    output = _last_probe(scoped, problem.name)
    return (f"{text}; last probe: {last_line(output)}" if output.strip() else text), output


def last_line(output: str, limit: int = REASON_LIMIT) -> str:
    """The output's last non-empty line, its spaces squeezed, cut to ``limit`` characters."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    line = next((line for line in reversed(lines) if line), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _last_probe(scoped: ScopedEngine, name: str) -> str:
    try:
        raw = scoped.inspect(name).raw
    except ContainerError:
        return ""
    probes = ((raw.get("State") or {}).get("Health") or {}).get("Log") or []
    return str(probes[-1].get("Output", "")) if probes else ""


def gate(
    target: Target, scoped: ScopedEngine, services: tuple[str, ...], checks: tuple[SmokeCheck, ...]
) -> Verdict:
    """Healthy within ``wait_timeout``, then the smoke checks (when any is configured)."""
    verdict = wait_healthy(target, scoped, services, target.settings.deploy.wait_timeout)
    if not verdict.healthy or not checks:
        return verdict
    smoked = smoke(target, scoped, checks)
    return Verdict(True, f"{verdict.detail}, {smoked.detail}") if smoked.healthy else smoked


def smoke(target: Target, scoped: ScopedEngine, checks: tuple[SmokeCheck, ...]) -> Verdict:
    """Every smoke check in order; the first that fails says what it got."""
    for check in checks:
        verdict = _url(check) if check.url else _command(target, scoped, check)
        if not verdict.healthy:
            why = f"smoke check {check.describe()} failed: {verdict.detail}"
            return Verdict(False, why, verdict.output)
    return Verdict(True, f"{len(checks)} smoke check(s) passed")


def _url(check: SmokeCheck) -> Verdict:
    assert check.url is not None
    try:
        # The configuration admits only http:// and https:// URLs (settings._check_deploy).
        with urllib.request.urlopen(check.url, timeout=check.timeout) as answer:  # noqa: S310
            return Verdict(200 <= answer.status < 300, f"HTTP {answer.status}")
    except urllib.error.HTTPError as exc:
        body = _body(exc)
        return Verdict(False, f"HTTP {exc.code}: {page_reason(body)}", body)
    except OSError as exc:
        return Verdict(False, str(exc))


def page_reason(body: str, limit: int = REASON_LIMIT) -> str:
    """What an error page says: an HTML page's title (an nginx 502 page ends in
    ``</html>``), else the body's first non-empty line."""
    title = _TITLE.search(body)
    if title is not None and title.group(1).strip():
        return last_line(" ".join(html.unescape(title.group(1)).split()), limit)
    first = next((line for line in body.splitlines() if line.strip()), "")
    return last_line(first, limit)


def _body(exc: urllib.error.HTTPError) -> str:
    return exc.read(4000).decode("utf-8", "replace")


def _command(target: Target, scoped: ScopedEngine, check: SmokeCheck) -> Verdict:
    assert check.service is not None
    rows = [r for r in target.select(scoped.list(), (check.service,)) if r.state == "running"]
    if not rows:
        return Verdict(False, f"no running container of {check.service}")
    result = scoped.exec(rows[0].name, check.command)
    detail = f"exit {result.exit_code}: {last_line(result.output)}"
    return Verdict(result.exit_code == 0, detail, result.output)
