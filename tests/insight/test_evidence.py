"""The evidence pack of a real Compose service: its definition is there, its secrets are not."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidekick.containers.engine import ContainerEngine
from sidekick.insight.evidence import MASK, evidence_pack
from sidekick.insight.report import InsightCollector
from tests.containers.helpers import BASE_IMAGE
from tests.integration.compose import SESSION as COMPOSE_SESSION
from tests.polling import wait_until

pytestmark = pytest.mark.docker

COMPOSE = f"""
services:
  shop:
    image: {BASE_IMAGE}
    command: ["sh", "-c", "echo 'payment gateway timed out' >&2; sleep 600"]
    environment:
      DATABASE_URL: postgres://shop:hunter2-db@db/shop
      STRIPE_API_KEY: sk_live_do_not_leak
      LOG_LEVEL: info
"""


@pytest.fixture
def compose_service(api: object, tmp_path: Path) -> Iterator[str]:
    project = f"{COMPOSE_SESSION}insight"
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    argv = ["docker", "compose", "-p", project, "-f", str(tmp_path / "compose.yaml")]
    subprocess.run([*argv, "up", "-d"], check=True, capture_output=True, timeout=120)
    try:
        yield f"{project}-shop-1"
    finally:
        subprocess.run([*argv, "down", "-t", "0"], check=False, capture_output=True, timeout=120)


def test_the_pack_holds_the_service_definition_logs_and_report_with_secrets_masked(
    engine: ContainerEngine, compose_service: str
) -> None:
    said = lambda: b"timed out" in engine.logs(compose_service).combined  # noqa: E731
    wait_until(said, what="the service's first log line")
    reports = InsightCollector(engine).collect([compose_service])
    pack = evidence_pack(engine, reports)
    assert "## Insight report" in pack and compose_service in pack
    assert "payment gateway timed out" in pack
    assert "Compose service definition (secrets masked)" in pack
    assert f"DATABASE_URL: postgres://shop:{MASK}@db/shop" in pack
    assert f"STRIPE_API_KEY: '{MASK}'" in pack and "LOG_LEVEL: info" in pack
    assert "hunter2-db" not in pack and "sk_live_do_not_leak" not in pack
