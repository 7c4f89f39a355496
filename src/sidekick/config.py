"""config.yaml: loaded once, overridden by the environment, validated before anything starts.

Every section is a frozen dataclass; :func:`load_config` walks the YAML against
their type hints, so an unknown key, a wrong type or a missing file is one
:class:`~sidekick.errors.ConfigError` naming the file and the dotted key.

Environment variables override the file for deployment: ``SIDEKICK_`` then
the dotted key with ``__`` for each dot, in any case, the value read as YAML
(``SIDEKICK_CAPACITY__MAX_AGENTS=4``, ``SIDEKICK_DAEMON__STATE_DIR=/state``).
``SIDEKICK_CONFIG`` names the file itself.

Values mean what the person typed (see :mod:`sidekick.config_yaml`): an
unquoted ``yes`` or ``012`` is never silently a boolean or an octal number.
Paths that would exceed a limit of the operating system are refused here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sidekick import claude_code
from sidekick.containers.settings import ContainersConfig
from sidekick.insight.settings import InsightConfig
from sidekick.production.settings import ProductionConfig
from sidekick.web.settings import WebConfig

DEFAULT_AGENT_COMMAND = claude_code.DEFAULT_COMMAND
NEXT_ACTION_PLACEHOLDER = "{next_action}"


@dataclass(frozen=True)
class CsvSourceConfig:
    path: Path = Path("priorities.csv")
    watch: str = "auto"
    poll_interval: float = 1.0
    lock_wait: float = 2.0


@dataclass(frozen=True)
class SheetsSourceConfig:
    credentials_file: Path = Path("/run/secrets/sheets_credentials.json")
    spreadsheet_id: str = ""
    worksheet: str = "Sheet1"
    poll_interval: float = 15.0
    requests_per_minute: int = 60
    retry_deadline: float = 20.0
    api_base_url: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    type: str = "auto"
    csv: CsvSourceConfig = field(default_factory=CsvSourceConfig)
    sheets: SheetsSourceConfig = field(default_factory=SheetsSourceConfig)


@dataclass(frozen=True)
class CapacityConfig:
    max_agents: int = 2
    gpu_slots: int = 1


@dataclass(frozen=True)
class PolicyConfig:
    on_removed: str = "stop"
    preempt: bool = False
    max_runtime: float = 3600.0
    stop_grace: float = 10.0
    resume_interrupted: bool = True


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path = Path("state")
    reconcile_interval: float = 30.0
    debounce: float = 0.05
    heartbeat_max_age: float = 30.0


@dataclass(frozen=True)
class TmuxConfig:
    socket: Path | None = None


@dataclass(frozen=True)
class ApiConfig:
    base_url: str | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class BudgetConfig:
    total_usd: float | None = None
    per_project_usd: float | None = None


@dataclass(frozen=True)
class AgentProfile:
    runner: str = "tmux"
    command: tuple[str, ...] = DEFAULT_AGENT_COMMAND
    stdin: str = claude_code.DEFAULT_STDIN
    env: dict[str, str] = field(default_factory=dict)
    claude: bool = True
    resume: bool = True
    image: str | None = None
    network: str | None = None
    cpus: float | None = None
    memory: str | None = None
    pids_limit: int | None = None
    remove_after: bool = True
    restart_policy: str = "no"
    user: str | None = None
    secrets: dict[str, Path] = field(default_factory=dict)
    # runner: swarm (sidekick.runners.swarm): placement, reservations, where the code is.
    constraints: tuple[str, ...] = ()
    reserve_cpus: float | None = None
    reserve_memory: str | None = None
    gpu_resources: dict[str, int] = field(default_factory=dict)
    workspace: str = "bind"
    git_remote: str | None = None
    shared_paths: tuple[Path, ...] = ()

    @property
    def takes_next_action(self) -> bool:
        """Whether a row's Next Action is the agent's work: Claude Code's prompt, or a
        placeholder in a template written for the agent (its command, its environment, a
        stdin of its own). A command of one's own that names it nowhere may ignore the
        standard input every profile is offered by default, as ``make`` does."""
        stdin = () if self.stdin == claude_code.DEFAULT_STDIN else (self.stdin,)
        templates = (*self.command, *stdin, *self.env.values())
        return self.claude or any(NEXT_ACTION_PLACEHOLDER in text for text in templates)


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``file`` is where it came from (None: defaults only)."""

    file: Path | None = None
    priority_source: SourceConfig = field(default_factory=SourceConfig)
    projects: dict[str, Path] = field(default_factory=dict)
    projects_root: Path | None = None
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    tmux: TmuxConfig = field(default_factory=TmuxConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    containers: ContainersConfig = field(default_factory=ContainersConfig)
    agents: dict[str, AgentProfile] = field(default_factory=lambda: {"default": AgentProfile()})
    default_agent: str = "default"
    # Filled from the mapping form of projects: entries (see sidekick.production.settings).
    production: dict[str, ProductionConfig] = field(default_factory=dict)
    # The dashboard (sidekick web); see sidekick.web.settings.
    web: WebConfig = field(default_factory=WebConfig)
    # Container insight and investigations; see sidekick.insight.settings.
    insight: InsightConfig = field(default_factory=InsightConfig)

    @property
    def tmux_socket(self) -> Path:
        return self.tmux.socket or self.daemon.state_dir / "tmux" / "sidekick.sock"

    def profile(self, model: str) -> AgentProfile:
        return self.agents[model or self.default_agent]

    def needs_next_action(self, model: str) -> bool:
        """Whether an agent of this row's Model would be started with its Next Action as its
        work, so that an empty one would start (and pay for) a run with nothing to do."""
        profile = self.agents.get(model or self.default_agent)
        return profile is not None and profile.takes_next_action

    def project_directory(self, name: str, column_value: str = "") -> Path | None:
        """Where a project's code lives: config first, then the Directory column, then the root."""
        if name in self.projects:
            return self.projects[name]
        if column_value:
            return self._resolve(Path(column_value))
        if self.projects_root is not None:
            return _under_root(self.projects_root, name)
        return None

    def directory_of(self, project_or_directory: str) -> Path | None:
        """For commands that take a project name or a directory: a configured project's
        directory, else the text itself when it names an existing directory, else where
        projects_root would put a project of that name."""
        if project_or_directory in self.projects:
            return self.projects[project_or_directory]
        given = Path(project_or_directory).expanduser()
        if given.is_dir():
            return given
        return self.project_directory(project_or_directory)

    def _resolve(self, path: Path) -> Path:
        """A Directory cell: absolute, or under projects_root, else beside the config file."""
        path = path.expanduser()
        if path.is_absolute():
            return path
        if self.projects_root is not None:
            return self.projects_root / path
        return (self.file.parent if self.file else Path.cwd()) / path


# --- loading ----------------------------------------------------------------


def builtin_agents() -> dict[str, AgentProfile]:
    """The profiles every config has, whatever its agents: section says."""
    return {"default": AgentProfile()}


def _under_root(root: Path, name: str) -> Path:
    """A project's directory under projects_root: its readable name as a person would
    make it (``Website Redesign`` → ``website-redesign``), or one named after its key,
    which tells apart names that read the same (``Foo Bar``, ``foo-bar``), where it exists."""
    own, readable = root_candidates(root, name)
    return own if own.is_dir() else readable


def root_candidates(root: Path, name: str) -> tuple[Path, Path]:
    """The two directories under projects_root that may be a project's: its key's slug,
    then its readable name's (which one exists decides)."""
    from sidekick.models import readable_slug, slugify

    return root / slugify(name), root / readable_slug(name)


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate the configuration.

    Raises ConfigError naming the file (or variable), the dotted key and the problem.
    The reading lives in :mod:`sidekick.config_loader`, imported here: a command that
    gets its configuration from :mod:`sidekick.config_cache` then never imports YAML."""
    from sidekick.config_loader import load

    return load(path, os.environ if environ is None else environ)


def source_kind(config: Config) -> str:
    """csv or sheets; ``auto`` is sheets when its credentials file exists."""
    chosen = config.priority_source.type
    if chosen != "auto":
        return chosen
    sheets = config.priority_source.sheets
    if sheets.spreadsheet_id and sheets.credentials_file.exists():
        return "sheets"
    return "csv"
