"""Frozen value objects that move between the modules."""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

SESSION_PREFIX = "sidekick-"


class ProjectStatus(enum.Enum):
    """The Status column. Values are the spelling written back to the list."""

    PENDING = "Pending"
    IN_PROGRESS = "In Progress"
    COMPLETE = "Complete"
    BLOCKED = "Blocked"
    FAILED = "Failed"

    @classmethod
    def parse(cls, text: str) -> ProjectStatus:
        """Case- and space-insensitive; raises ValueError naming the choices."""
        wanted = " ".join(text.split()).casefold()
        for status in cls:
            if status.value.casefold() == wanted:
                return status
        choices = ", ".join(s.value for s in cls)
        raise ValueError(f"unknown status {text!r} (expected one of: {choices})")


# The readable part of a key for names in Cyrillic and Greek; other letters
# lose their accents (NFKD) and anything still not ASCII is left to the hash.
_TRANSLITERATION = str.maketrans(
    {
        **dict(zip("абвгдезийклмнопрстуфыэ", "abvgdezijklmnoprstufye", strict=True)),
        **{
            "ё": "e",
            "ж": "zh",
            "\N{CYRILLIC SMALL LETTER HA}": "kh",
            "ц": "ts",
            "ч": "ch",
            "ш": "sh",
            "щ": "shch",
        },
        **{
            "ъ": "",
            "ь": "",
            "ю": "yu",
            "я": "ya",
            "є": "ye",
            "\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
            "ї": "yi",
            "ґ": "g",
        },
        **dict(zip("αβγδεζηικλμνξοπρσςτυφω", "abgdeziiklmnxoprsstyfo", strict=True)),
        **{"θ": "th", "χ": "ch", "ψ": "ps"},
    }
)
# Longer keys are shortened and hashed: log and config directories are named
# after the key, and a file name has a length limit.
_PLAIN_KEY_LIMIT = 64
_READABLE_LIMIT = 40
_HASH_LENGTH = 8


def identity_text(name: str) -> str:
    """The text that identifies a project: names equal here are the same project.

    Case, Unicode normal form and runs of white space do not make two projects.
    """
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def legacy_slug(name: str) -> str:
    """The key part every name had before keys were unique, kept to adopt older agents."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return slug or "project"


@functools.lru_cache(maxsize=65536)
def slugify(name: str) -> str:
    """A stable, tmux- and Docker-safe key part, distinct for every distinct project name.

    A name that already is a key (``example-api``, ``Backend``) keeps it, as it
    always had. Any other name, whose readable form drops something (spaces,
    punctuation, other scripts), gets that readable form and ``_`` and a hash
    of its identity text; plain keys never hold ``_``, so the two never meet.
    """
    text = identity_text(name)
    if text == legacy_slug(text) and len(text) <= _PLAIN_KEY_LIMIT:
        return text
    readable = _readable(text)[:_READABLE_LIMIT].strip("-") or "project"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    return f"{readable}_{digest}"


@functools.lru_cache(maxsize=65536)
def readable_slug(name: str) -> str:
    """The readable part of a name's key alone (``Website Redesign`` → ``website-redesign``,
    ``Бэкенд`` → ``bekend``); not unique, so never an identity."""
    return _readable(identity_text(name)) or "project"


def _readable(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", letters.casefold().translate(_TRANSLITERATION)).strip("-")


def agent_key(project_name: str) -> str:
    """The deterministic key of a project's agent: tmux session and container name."""
    return SESSION_PREFIX + slugify(project_name)


def legacy_agent_key(project_name: str) -> str:
    """The key an agent for this project was started under before keys were unique."""
    return SESSION_PREFIX + legacy_slug(project_name)


@dataclass(frozen=True)
class Project:
    """One valid row of the priority list."""

    name: str
    priority: int
    status: ProjectStatus
    agent: str = ""
    last_update: str = ""
    next_action: str = ""
    deadline: date | None = None
    gpu: bool = False
    model: str = ""
    directory: str = ""
    line: int = 0
    position: int = 0

    @functools.cached_property
    def key(self) -> str:
        return agent_key(self.name)


@dataclass(frozen=True)
class Finding:
    """A problem in the input, located precisely enough for a person to fix it."""

    source: str
    line: int
    field: str
    problem: str
    project: str = ""
    """The name in the row's Project cell, when it has one: the row is still in the list."""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        column = f" [{self.field}]" if self.field else ""
        return f"{where}{column}: {self.problem}"


@dataclass(frozen=True)
class Snapshot:
    """What a source served on one load: valid projects, findings, and a content version."""

    projects: tuple[Project, ...]
    findings: tuple[Finding, ...] = ()
    version: str = ""

    def by_name(self) -> dict[str, Project]:
        return {p.name: p for p in self.projects}


@dataclass(frozen=True)
class RowUpdate:
    """New values for the daemon's own cells of one row; None leaves a cell alone."""

    project: str
    status: ProjectStatus | None = None
    agent: str | None = None
    last_update: str | None = None

    def cells(self) -> dict[str, str]:
        """Column name → new text, for the cells this update sets."""
        out: dict[str, str] = {}
        if self.status is not None:
            out["Status"] = self.status.value
        if self.agent is not None:
            out["Agent"] = self.agent
        if self.last_update is not None:
            out["Last Update"] = self.last_update
        return out


@dataclass(frozen=True)
class WriteResult:
    """What a write-back did: rows changed, updates whose row was gone, and attempts.

    ``snapshot`` is the list as the write-back read it, with its updates applied,
    so a reconcile that wrote need not read again.
    """

    written: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    attempts: int = 1
    version: str = ""
    snapshot: Snapshot | None = None


@dataclass(frozen=True)
class AgentRun:
    """One run of an agent as the state store keeps it."""

    run_id: str
    project: str
    key: str
    command: tuple[str, ...]
    started_at: datetime
    state: str = "starting"
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    outcome: str = ""
    log_path: str = ""
    session_id: str = ""
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    runner: str = "tmux"
    extra: dict[str, str] = field(default_factory=dict)
