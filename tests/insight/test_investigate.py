"""sidekick investigate end to end: the real Claude Code CLI, the mock API, a real container."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sidekick.cli import main
from sidekick.config import load_config
from sidekick.insight.evidence import MASK, mask_values
from sidekick.insight.investigate import investigation_runner
from sidekick.runners.tmux import TmuxRunner
from sidekick.state import StateStore
from tests.insight.conftest import MOCK_KEY
from tests.mockapi import MockServer

pytestmark = [pytest.mark.claude, pytest.mark.docker]


@pytest.fixture
def config(tmp_path: Path, mock: MockServer) -> Iterator[str]:
    key_file = tmp_path / "anthropic_api_key"
    key_file.write_text(MOCK_KEY + "\n")
    key_file.chmod(0o400)
    socket = Path("/tmp") / f"sk-inv-{uuid.uuid4().hex[:8]}" / "sidekick.sock"
    socket.parent.mkdir()
    settings = {
        "daemon": {"state_dir": str(tmp_path / "state")},
        "tmux": {"socket": str(socket)},
        "api": {"base_url": mock.base_url, "key_file": str(key_file)},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    yield str(path)
    TmuxRunner(socket).end_all()
    investigation_runner(load_config(path)).end_all()


def test_an_investigation_reads_the_logs_answers_is_recorded_and_cannot_edit(
    config: str, tmp_path: Path, exited_non_zero: str, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "sidekick-insight-probe: why did it stop?"
    assert main(["investigate", "--config", config, exited_non_zero, question]) == 0
    out = capsys.readouterr().out
    assert "Diagnosis: the container exited with code 4 because migration 0042 failed" in out
    assert "edits refused (read-only profile): Write" in out

    store = StateStore(tmp_path / "state" / "sidekick.db")
    try:
        (run,) = store.runs(exited_non_zero)
        events = [e for e in store.events(exited_non_zero) if e.kind == "investigation"]
    finally:
        store.close()
    assert run.state == "finished" and run.exit_code == 0 and run.outcome == "Investigated"
    assert run.reason.startswith("investigation: Diagnosis:")
    assert run.cost_usd is not None and run.cost_usd > 0, "counted in the budgets"
    assert len(events) == 1

    workdir = Path(run.log_path).parent
    assert not (workdir / "fix.sh").exists(), "the read-only profile let an edit through"
    log = Path(run.log_path).read_text()
    assert "migration 0042 failed: no such table" in log, "the agent read the logs"
    assert "Write is disabled" in log
    report = (workdir / "REPORT.md").read_text()
    assert "## Answer\nDiagnosis:" in report and f"question: {question}" in report

    assert main(["runs", "--config", config, exited_non_zero]) == 0
    assert "investigation: Diagnosis:" in capsys.readouterr().out
    assert main(["insight", "--config", config, exited_non_zero]) == 0
    assert "last investigation: Diagnosis:" in capsys.readouterr().out


def test_the_evidence_pack_masks_secrets_in_a_compose_service() -> None:
    service = {
        "image": "shop:1.4",
        "environment": {
            "DATABASE_URL": "postgres://shop:hunter2@db/shop",
            "STRIPE_API_KEY": "sk_live_abc",
            "LOG_LEVEL": "info",
        },
        "command": ["serve", "--db", "mysql://root:rootpw@db:3306/x"],
        "secrets": ["db_password"],
        "labels": ["SESSION_SECRET=shh", "tier=web"],
    }
    masked = mask_values(service)
    assert masked["environment"] == {
        "DATABASE_URL": f"postgres://shop:{MASK}@db/shop",
        "STRIPE_API_KEY": MASK,
        "LOG_LEVEL": "info",
    }
    assert masked["command"][2] == f"mysql://root:{MASK}@db:3306/x"
    assert masked["labels"] == [f"SESSION_SECRET={MASK}", "tier=web"]
    assert masked["image"] == "shop:1.4"
