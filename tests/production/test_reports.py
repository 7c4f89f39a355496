"""What a failed check says in one line, and what the audit log keeps of its output."""

from __future__ import annotations

import pytest

from sidekick.production.deploy import FAILED, Outcome
from sidekick.production.health import REASON_LIMIT, REPORT_LIMIT, Verdict, page_reason, report
from sidekick.production.store import ProductionStore
from tests.production.fixture import SECRET, ProdApp

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "</body>\r\n</html>\r\n"
)

TITLED = "Service & Co down"
UNAVAILABLE = "\u670d\u52a1\u4e0d\u53ef\u7528"  # Chinese: service unavailable
JSON_ERROR = '{"error": "database unreachable"}'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (NGINX_502, "502 Bad Gateway"),
        (
            "<!DOCTYPE html><html><head><TITLE>\n  Service &amp; Co\n  down</TITLE>",
            "Service & Co down",
        ),
        (
            "<html><head><title>\u670d\u52a1\u4e0d\u53ef\u7528</title></head></html>",
            "\u670d\u52a1\u4e0d\u53ef\u7528",
        ),
        ("not found\n", "not found"),
        (
            '\n\n{"error": "database unreachable"}\n{"trace": "..."}\n',
            '{"error": "database unreachable"}',
        ),
        ("<html><title></title><body>\n</body></html>", "<html><title></title><body>"),
        ("", ""),
        ("x" * 5000, "x" * (REASON_LIMIT - 3) + "..."),
    ],
)
def test_an_http_failures_reason_is_the_pages_title_or_its_first_line(
    body: str, reason: str
) -> None:
    assert page_reason(body) == reason


def test_the_audit_report_keeps_the_end_of_a_long_output_within_the_limit() -> None:
    output = "start\n" + "line\n" * 10_000 + "ValueError: the end\n"
    text = report("failed", output)
    first, _, kept = text.partition("\n")
    assert first == "failed" and len(kept) == REPORT_LIMIT
    assert kept.startswith("...") and kept.endswith("ValueError: the end")
    assert report("failed", "  \n") == "failed" and report("same", "same\n") == "same"


def test_a_deploy_outcome_and_a_verdict_report_alike() -> None:
    for output in ("", "Traceback\nboom\n", "y" * 20_000):
        outcome = Outcome(FAILED, "r3 failed: boom", output=output)
        assert outcome.report() == Verdict(False, "r3 failed: boom", output).report()


def test_restart_records_a_smoke_checks_output_redacted_and_capped(prod_app: ProdApp) -> None:
    smoke = (
        "        smoke:\n"
        "          - service: web\n"
        "            command: [sh, -c, 'echo token $SECRET_TOKEN; seq 1 20000; exit 3']\n"
    )
    prod_app.config.write_text(prod_app.config.read_text() + smoke)
    result = prod_app.sidekick("restart", prod_app.name, "--yes")
    assert result.returncode == 1
    assert "exit 3" in result.stderr
    with ProductionStore(prod_app.root / "state" / "sidekick.db") as store:
        entry = store.audit_log(prod_app.name)[0]
    assert (entry.action, entry.outcome) == ("restart", "unhealthy")
    assert SECRET not in entry.detail + result.stdout + result.stderr
    first, _, output = entry.detail.partition("\n")
    assert "smoke check" in first and len(output) <= REPORT_LIMIT
    assert output.endswith("20000")
