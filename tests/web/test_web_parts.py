"""The dashboard's parts that need no server: sessions, the secret file, text cut into events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sidekick.errors import ConfigError
from sidekick.web.auth import (
    Sessions,
    bearer_user,
    check_login,
    csrf_matches,
    hash_password,
    read_credentials,
)
from sidekick.web.data import bar_chart, read_tail
from sidekick.web.live import sse_event, whole_characters

# A password in another script, with spaces (written with escapes: its letters look Latin).
PASSWORD = "\u043f\u0430\u0440\u043e\u043b\u044c \u0441 " + "\u043f\u0440\u043e\u0431\u0435\u043b"
SCRIPTS = "ascii Привет مرحبا שלום 日本語 한국어 हिन्दी 🙂👩‍💻 e\u0301"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires_its_lifetime_after_login() -> None:
    clock = Clock()
    sessions = Sessions(lifetime=60, clock=clock)
    session_id, session = sessions.open("alice")
    clock.now += 59.9
    assert sessions.get(session_id) is session
    clock.now += 0.1
    assert sessions.get(session_id) is None
    assert sessions.get("made-up") is None


def test_log_out_ends_a_session_and_each_login_gets_its_own_csrf_token() -> None:
    sessions = Sessions(lifetime=60)
    first_id, first = sessions.open("alice")
    _, second = sessions.open("alice")
    assert first.csrf != second.csrf
    assert csrf_matches(first, first.csrf)
    assert not csrf_matches(first, second.csrf) and not csrf_matches(first, "")
    sessions.close(first_id)
    assert sessions.get(first_id) is None


def test_the_secret_file_holds_tokens_and_hashed_passwords(tmp_path: Path) -> None:
    secret = tmp_path / "dashboard.secret"
    secret.write_text(
        "# comment\n\nalice:token-of-alice-123\n"
        f"bob:{hash_password(PASSWORD)}\nshort:abc\nno-name-line\n"
    )
    credentials = read_credentials(secret)
    assert [c.user for c in credentials] == ["alice", "bob"]
    assert check_login(credentials, "alice", "token-of-alice-123") == "alice"
    assert check_login(credentials, "bob", PASSWORD) == "bob"
    assert check_login(credentials, "bob", "token-of-alice-123") is None
    assert check_login(credentials, "alice", "") is None
    # A password is for the form; only a plain token works as a program's bearer token.
    assert bearer_user(credentials, "token-of-alice-123") == "alice"
    assert bearer_user(credentials, PASSWORD) is None


@pytest.mark.parametrize("text", ["", "# only a comment\n", "short:abc\n"])
def test_a_secret_file_without_a_usable_line_is_refused(tmp_path: Path, text: str) -> None:
    secret = tmp_path / "dashboard.secret"
    secret.write_text(text)
    with pytest.raises(ConfigError, match=r"web.secret_file: holds no name:secret line"):
        read_credentials(secret)


def test_a_missing_secret_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.secret: web.secret_file: cannot be read"):
        read_credentials(tmp_path / "missing.secret")


def test_output_cut_anywhere_never_splits_a_character_of_any_script() -> None:
    data = SCRIPTS.encode()
    for cut in range(1, len(data)):
        head = whole_characters(data[:cut])
        assert head.decode("utf-8")  # never raises: no half character
        assert cut - len(head) < 4


def test_an_event_carries_every_line_of_its_data() -> None:
    event = sse_event("projects", "<tr>\n<td>a</td>\n</tr>")
    assert event == b"event: projects\ndata: <tr>\ndata: <td>a</td>\ndata: </tr>\n\n"


def test_the_tail_of_a_log_starts_at_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("".join(f"line {i} {SCRIPTS}\n" for i in range(1000)))
    tail = read_tail(log, 4096)
    assert tail.startswith("line ") and tail.endswith(f"line 999 {SCRIPTS}\n")
    assert len(tail.encode()) <= 4096
    assert read_tail(tmp_path / "none.log", 4096) == ""


def test_the_cost_chart_scales_the_highest_day_to_the_full_height() -> None:
    bars = bar_chart([("2026-11-01", 1.0), ("2026-11-02", 4.0), ("2026-11-03", 0.0)])
    assert [b["height"] for b in bars] == [50.0, 200.0, 0.0]
    assert bar_chart([]) == []


def _sidekick(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "sidekick", *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)


def test_sidekick_web_hash_prints_a_line_that_logs_in_with_the_password(tmp_path: Path) -> None:
    done = _sidekick("web", "--hash", "bob", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("bob:pbkdf2_sha256$") and PASSWORD not in line
    secret = tmp_path / "dashboard.secret"
    secret.write_text(line + "\n")
    assert check_login(read_credentials(secret), "bob", PASSWORD) == "bob"


def test_sidekick_web_without_a_secret_file_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("web:\n  port: 8799\n")
    done = _sidekick("web", "--config", str(config))
    assert done.returncode == 1
    assert "web.secret_file: is required" in done.stderr
