"""Who may see the dashboard: credentials from a secret file, expiring sessions, CSRF tokens.

The secret file holds one credential a line, ``name:token`` (compared in constant
time) or ``name:pbkdf2_sha256$ITERATIONS$SALT$HASH`` (a password, stored hashed;
``sidekick web --hash`` makes the line). The name is who the audit log says acted.
Sessions live in this process only: restarting the dashboard logs everyone out,
which is the safe direction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sidekick.errors import ConfigError

HASH_SCHEME = "pbkdf2_sha256"
HASH_ITERATIONS = 600_000
Clock = Callable[[], float]


@dataclass(frozen=True)
class Credential:
    user: str
    secret: str

    def accepts(self, offered: str) -> bool:
        if self.secret.startswith(HASH_SCHEME + "$"):
            return _password_matches(self.secret, offered)
        return hmac.compare_digest(self.secret.encode(), offered.encode())


def hash_password(password: str, salt: str | None = None) -> str:
    """The line's credential part for a password (what the secret file stores)."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), HASH_ITERATIONS)
    return f"{HASH_SCHEME}${HASH_ITERATIONS}${salt}${digest.hex()}"


def _password_matches(stored: str, offered: str) -> bool:
    try:
        _, iterations, salt, expected = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", offered.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)


def read_credentials(path: Path) -> list[Credential]:
    """Every credential in the file; an unusable file is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "web.secret_file", f"cannot be read: {exc.strerror}") from None
    found = [_credential(line) for line in text.splitlines() if line.strip()]
    credentials = [c for c in found if c is not None]
    if not credentials:
        raise ConfigError(str(path), "web.secret_file", "holds no name:secret line")
    return credentials


def _credential(line: str) -> Credential | None:
    if line.lstrip().startswith("#"):
        return None
    user, sep, secret = line.strip().partition(":")
    if not sep or not user or len(secret) < 8:
        # A short secret would be guessed; a line without a name has no one to audit.
        return None
    return Credential(user, secret)


def check_login(credentials: list[Credential], user: str, offered: str) -> str | None:
    """The user's name when the secret is theirs; every line is tried, so timing says little."""
    accepted = [c.user for c in credentials if c.accepts(offered) and c.user == user]
    return accepted[0] if accepted else None


def bearer_user(credentials: list[Credential], token: str) -> str | None:
    """A token sent by a program (a Prometheus scrape): any token line, never a password."""
    for credential in credentials:
        plain = not credential.secret.startswith(HASH_SCHEME + "$")
        if plain and credential.accepts(token):
            return credential.user
    return None


@dataclass
class Session:
    user: str
    csrf: str
    expires_at: float


class Sessions:
    """Sessions by an unguessable id; each expires a fixed time after login."""

    def __init__(self, lifetime: float, clock: Clock = time.time) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._by_id: dict[str, Session] = {}

    def open(self, user: str) -> tuple[str, Session]:
        self._forget_expired()
        session_id = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), self._clock() + self.lifetime)
        self._by_id[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        session = self._by_id.get(session_id)
        if session is None or session.expires_at <= self._clock():
            self._by_id.pop(session_id, None)
            return None
        return session

    def close(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._by_id.items() if s.expires_at <= now]:
            del self._by_id[key]


def csrf_matches(session: Session, offered: str) -> bool:
    return bool(offered) and hmac.compare_digest(session.csrf.encode(), offered.encode())
