"""The evidence pack an investigating agent gets: insight report, logs, events, probes,
and the Compose service definition with its secrets masked."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sidekick.containers import observe
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.insight.render import render_report
from sidekick.insight.report import ContainerInsight

logger = logging.getLogger(__name__)

LOG_LINES = 80
MASK = "********"
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN)", re.I)
# A URL's password (postgres://user:pass@host) is a secret wherever it appears.
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
COMPOSE_FILES_LABEL = "com.docker.compose.project.config_files"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


def evidence_pack(engine: ContainerEngine, reports: Sequence[ContainerInsight]) -> str:
    sections = ["## Insight report", "```", render_report(reports), "```"]
    for report in reports:
        sections += _container_sections(engine, report)
    return "\n".join(sections) + "\n"


def _container_sections(engine: ContainerEngine, report: ContainerInsight) -> list[str]:
    lines = [f"## {report.name}: last {LOG_LINES} log lines", "```"]
    lines += [mask_text(line) for line in _logs(engine, report.name)] or ["(no output)"]
    lines.append("```")
    if report.health is not None:
        lines.append(f"## {report.name}: recent engine events")
        lines += [
            f"- {e.time:%H:%M:%S} {e.action} {e.detail}".rstrip() for e in report.health.events
        ]
        lines.append(f"## {report.name}: health probe outputs")
        lines += [f"- exit {p.exit_code}: {mask_text(p.output)}" for p in report.health.probes]
    service = compose_service(engine, report.name)
    if service:
        lines += [f"## {report.name}: Compose service definition (secrets masked)", "```yaml"]
        lines += [service.rstrip(), "```"]
    return lines


def _logs(engine: ContainerEngine, name: str) -> tuple[str, ...]:
    try:
        return observe.log_tail(engine, name, LOG_LINES)
    except ContainerError as exc:
        return (f"(logs unavailable: {exc})",)


def compose_service(engine: ContainerEngine, name: str) -> str:
    """The service's block from the compose file that made the container, masked; or ""."""
    try:
        raw = observe.inspect_raw(engine, name)
    except ContainerError:
        return ""
    labels = (raw.get("Config") or {}).get("Labels") or {}
    files, service = labels.get(COMPOSE_FILES_LABEL, ""), labels.get(COMPOSE_SERVICE_LABEL, "")
    for file in filter(None, str(files).split(",")):
        definition = _service_in(Path(file), str(service))
        if definition is not None:
            return yaml.safe_dump({service: mask_values(definition)}, sort_keys=False)
    return ""


def _service_in(path: Path, service: str) -> Any:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        logger.info("compose file %s unreadable: %s", path, exc)
        return None
    services = document.get("services") if isinstance(document, Mapping) else None
    return services.get(service) if isinstance(services, Mapping) else None


def mask_values(value: Any, key: str = "") -> Any:
    """Values under secret-looking keys become a mask; URL passwords too, at any depth."""
    if isinstance(value, Mapping):
        return {k: mask_values(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(item, key) for item in value]
    if isinstance(value, str):
        return _mask_entry(value, key)
    return MASK if SECRET_NAME.search(key) and value is not None else value


def _mask_entry(value: str, key: str) -> str:
    if SECRET_NAME.search(key):
        return MASK
    name, sep, _ = value.partition("=")
    if sep and SECRET_NAME.search(name):  # environment as a list of NAME=value
        return f"{name}={MASK}"
    return mask_text(value)


def mask_text(text: str) -> str:
    return URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
