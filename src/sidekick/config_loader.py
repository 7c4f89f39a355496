"""Reading config.yaml: YAML, the environment's overrides, types and rules.

:func:`sidekick.config.load_config` is the entry point; this module holds what it needs
and the classes of :mod:`sidekick.config` do not (PyYAML, the placeholder and OS-limit
checks), so that a command served from :mod:`sidekick.config_cache` never imports them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from sidekick import agent_command
from sidekick.config import AgentProfile, Config, builtin_agents
from sidekick.config_file import ENV_PREFIX, config_path
from sidekick.config_yaml import Plain, UnclearValue, parse, typed
from sidekick.errors import ConfigError
from sidekick.insight.settings import check_insight
from sidekick.os_limits import path_problem, socket_path_problem
from sidekick.production.settings import ProductionConfig, check_production, split_projects


def load(path: str | Path | None, environ: Mapping[str, str]) -> Config:
    """See :func:`sidekick.config.load_config`."""
    file = config_path(path)
    raw, lines = _read_yaml(file) if file else ({}, {})
    origins: dict[str, str] = {}
    _apply_env(raw, environ, origins)
    where = str(file) if file else "(defaults)"
    base = file.parent.resolve() if file else Path.cwd()
    loader = _Loader(where, base, origins, lines)
    blocks = split_projects(raw, loader.error)
    values = loader.fields(Config, raw, "")
    # A person's agents: section adds to the built-in profiles (one of the same name replaces
    # it): a list whose Model is "default" keeps working once they add a profile of their own.
    values["agents"] = {**builtin_agents(), **values.get("agents", {})}
    values["production"] = _production(blocks, loader)
    config = Config(file=file.resolve() if file else None, **values)
    _check(config, loader)
    for name, settings in config.production.items():
        check_production(name, settings, config.project_directory(name), loader.error)
    return config


def _production(blocks: dict[str, Any], loader: _Loader) -> dict[str, ProductionConfig]:
    return {
        name: loader.value(ProductionConfig, block, f"projects.{name}.production")
        for name, block in blocks.items()
    }


def _read_yaml(file: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The file's mapping and the line of each dotted key in it."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), "", "config file does not exist") from None
    except OSError as exc:
        raise ConfigError(str(file), "", f"cannot be read: {exc.strerror}") from None
    try:
        data, lines = parse(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(file), "", f"not valid YAML: {exc}") from None
    except UnclearValue as exc:
        raise ConfigError(str(file), "", str(exc)) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(str(file), "", "the top level must be a mapping of keys")
    return data, lines


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], origins: dict[str, str]) -> None:
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        target = raw
        for index, key in enumerate(keys[:-1]):
            keys[index] = _spelled(target, key, name)
            target = target.setdefault(keys[index], {})
            if not isinstance(target, dict):
                raise ConfigError(f"environment variable {name}", ".".join(keys), "not a section")
        keys[-1] = _spelled(target, keys[-1], name)
        try:
            target[keys[-1]] = parse(text)[0] if text else ""
        except (yaml.YAMLError, UnclearValue):
            target[keys[-1]] = text
        origins[".".join(keys)] = f"environment variable {name}"


def _spelled(section: dict[str, Any], key: str, variable: str) -> str:
    """How the section spells a key of an environment variable (whose name is in capitals,
    where a project's name in config.yaml need not be): the key itself, else the one key
    that differs from it only in case, else the key as it is (a new one)."""
    if key in section:
        return key
    same = sorted(str(k) for k in section if str(k).lower() == key)
    if len(same) > 1:
        raise ConfigError(
            f"environment variable {variable}", key, f"names several keys: {', '.join(same)}"
        )
    return same[0] if same else key


class _Loader:
    """Builds sections (dataclasses, or the NamedTuples a look is served) from YAML values,
    naming file and key in every error."""

    def __init__(
        self, where: str, base: Path, origins: dict[str, str], lines: dict[str, int]
    ) -> None:
        self.where = where
        self.base = base
        self.origins = origins
        self.lines = lines

    def error(self, key: str, problem: str) -> ConfigError:
        if key in self.origins:
            return ConfigError(self.origins[key], key, problem)
        return ConfigError(self.where, key, problem, self.lines.get(key))

    def fields(self, cls: type[Any], raw: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(prefix, f"expected a mapping, got {type(raw).__name__}")
        hints = get_type_hints(cls)
        known = {name for name in _field_names(cls) if name != "file"}
        for key in raw:
            if key not in known:
                raise self.error(_join(prefix, str(key)), f"unknown key (known: {sorted(known)})")
        values = {k: self.value(hints[k], v, _join(prefix, k)) for k, v in raw.items()}
        for name in known - values.keys():
            default = self._default(cls, name, hints[name], prefix)
            if default is not None:
                values[name] = default
        return values

    def _default(self, cls: type[Any], name: str, hint: Any, prefix: str) -> Any:
        """Defaults of nested sections and relative paths, resolved like written values."""
        if _is_section(hint):
            return self.value(hint, {}, _join(prefix, name))
        default = _field_default(cls, name)
        if isinstance(default, Path) and not default.is_absolute():
            return self.base / default
        return None

    def value(self, hint: Any, raw: Any, key: str) -> Any:
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            return self._optional(hint, raw, key)
        if _is_section(hint):
            return hint(**self.fields(hint, raw, key))
        if origin is dict:
            return self._mapping(get_args(hint)[1], raw, key)
        if origin is tuple:
            return self._sequence(get_args(hint)[0], raw, key)
        return self._scalar(hint, raw, key)

    def _optional(self, hint: Any, raw: Any, key: str) -> Any:
        if raw is None:
            return None
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return self.value(inner, raw, key)

    def _mapping(self, value_hint: Any, raw: Any, key: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(key, f"expected a mapping, got {type(raw).__name__}")
        return {str(k): self.value(value_hint, v, _join(key, str(k))) for k, v in raw.items()}

    def _sequence(self, item_hint: Any, raw: Any, key: str) -> tuple[Any, ...]:
        if not isinstance(raw, list):
            raise self.error(key, f"expected a list, got {type(raw).__name__}")
        return tuple(self.value(item_hint, v, f"{key}[{i}]") for i, v in enumerate(raw))

    def _scalar(self, hint: Any, raw: Any, key: str) -> Any:
        if isinstance(raw, Plain):
            try:
                raw = typed(hint, raw)
            except UnclearValue as exc:
                raise self.error(key, str(exc)) from None
        if hint is Path:
            if not isinstance(raw, str) or not raw:
                raise self.error(key, f"expected a path, got {raw!r}")
            path = Path(raw).expanduser()
            return path if path.is_absolute() else self.base / path
        if hint is bool:
            if not isinstance(raw, bool):
                raise self.error(key, f"expected true or false, got {raw!r}")
            return raw
        if hint is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        if hint is str and isinstance(raw, int | float) and not isinstance(raw, bool):
            return str(raw)
        if not isinstance(raw, hint) or isinstance(raw, bool):
            raise self.error(key, f"expected {_type_name(hint)}, got {raw!r}")
        return raw


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(hint: Any) -> str:
    return {int: "a whole number", float: "a number", str: "text"}.get(hint, str(hint))


_CHOICES = {
    "priority_source.type": ("auto", "csv", "sheets"),
    "priority_source.csv.watch": ("auto", "inotify", "watchdog", "poll"),
    "policy.on_removed": ("stop", "finish"),
}
_RESTART_POLICIES = ("no", "on-failure", "unless-stopped", "always")


def _check(config: Config, loader: _Loader) -> None:
    """Rules that span keys or values, after every type is right."""
    chosen = {
        "priority_source.type": config.priority_source.type,
        "priority_source.csv.watch": config.priority_source.csv.watch,
        "policy.on_removed": config.policy.on_removed,
    }
    for key, value in chosen.items():
        if value not in _CHOICES[key]:
            raise loader.error(key, f"must be one of {', '.join(_CHOICES[key])}, got {value!r}")
    if config.default_agent not in config.agents:
        known = ", ".join(sorted(config.agents))
        raise loader.error(
            "default_agent",
            f"no agent profile named {config.default_agent!r} (profiles: {known})",
        )
    for name, profile in config.agents.items():
        if profile.runner not in ("tmux", "container", "swarm"):
            raise loader.error(f"agents.{name}.runner", "must be tmux, container or swarm")
        _check_swarm(name, profile, loader)
        if not profile.command:
            raise loader.error(f"agents.{name}.command", "must not be empty")
        _check_placeholders(name, profile, loader)
        if profile.restart_policy not in _RESTART_POLICIES:
            choices = ", ".join(_RESTART_POLICIES)
            raise loader.error(f"agents.{name}.restart_policy", f"must be one of {choices}")
    _check_files(config, loader)
    _check_numbers(config, loader)
    _check_os_limits(config, loader)
    check_insight(config.insight, loader.error)


_SIZE = re.compile(r"^[0-9]+[bkmgBKMG]?$")


def _check_swarm(name: str, profile: AgentProfile, loader: _Loader) -> None:
    if profile.workspace not in ("bind", "git"):
        raise loader.error(f"agents.{name}.workspace", "must be bind or git")
    if profile.runner == "swarm" and not profile.image:
        raise loader.error(f"agents.{name}.image", "a swarm profile must name its image")
    if profile.reserve_cpus is not None and profile.reserve_cpus <= 0:
        raise loader.error(f"agents.{name}.reserve_cpus", "must be above 0")
    if profile.reserve_memory is not None and not _SIZE.match(profile.reserve_memory):
        raise loader.error(f"agents.{name}.reserve_memory", "must be a size such as 512m or 2g")


def _check_placeholders(name: str, profile: AgentProfile, loader: _Loader) -> None:
    """A row's text may be an argument or stdin, never code a shell or interpreter runs."""
    for unsafe in agent_command.unsafe_placeholders(profile.command, profile.stdin):
        where = "stdin" if unsafe.index == len(profile.command) else f"command[{unsafe.index}]"
        raise loader.error(f"agents.{name}.{where}", unsafe.problem())
    for index in agent_command.option_like_placeholders(profile.command):
        raise loader.error(
            f"agents.{name}.command[{index}]",
            "Claude Code would read a Next Action starting with '-' as an option: "
            'leave the prompt out of command (stdin: "{next_action}" gives it on stdin, '
            "the default) or put it after '--'",
        )


def _check_files(config: Config, loader: _Loader) -> None:
    sheets = config.priority_source.sheets
    if config.priority_source.type == "sheets":
        if not sheets.spreadsheet_id:
            raise loader.error("priority_source.sheets.spreadsheet_id", "required for sheets")
        if not sheets.credentials_file.is_file():
            key = "priority_source.sheets.credentials_file"
            raise loader.error(key, f"file does not exist: {sheets.credentials_file}")
    key_file = config.api.key_file
    if key_file is not None and not key_file.is_file():
        raise loader.error("api.key_file", f"file does not exist: {key_file}")


# Numbers with bounds of their own; every other one only cannot be negative.
_RANGES: dict[str, tuple[float, float]] = {
    # A TCP port; the web server dies with an OverflowError past 65535.
    "port": (1, 65535),
    # Docker reads -1 as "no limit".
    "pids_limit": (-1, math.inf),
}
# Zero here would spin a loop, time out at once, or never let a request through.
_ABOVE_ZERO = frozenset(
    {
        "poll_interval",
        "requests_per_minute",
        "reconcile_interval",
        "heartbeat_max_age",
        "timeout",
        "wait_timeout",
        "session_seconds",
    }
)


def _check_numbers(config: Config, loader: _Loader) -> None:
    for key, number in _numbers(config):
        problem = _number_problem(key.rsplit(".", 1)[-1], number)
        if problem is not None:
            raise loader.error(key, f"{problem}, got {number!r}")


def _number_problem(name: str, number: float) -> str | None:
    if not math.isfinite(number):
        return "must be a finite number"
    low, high = _RANGES.get(name, (0, math.inf))
    if not low <= number <= high:
        return f"must be from {low} to {high}" if high < math.inf else f"must be {low} or more"
    if name in _ABOVE_ZERO and number == 0:
        return "must be more than 0"
    return None


def _numbers(config: Config) -> Iterator[tuple[str, float]]:
    """Every configured number, with its dotted key (switches are not numbers)."""
    for key, value in _leaves(config, ""):
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield key, value


def _check_os_limits(config: Config, loader: _Loader) -> None:
    for key, path in configured_paths(config):
        problem = path_problem(path)
        if problem is not None:
            raise loader.error(key, problem)
    socket_key = "tmux.socket" if config.tmux.socket else "daemon.state_dir"
    problem = socket_path_problem(config.tmux_socket)
    if problem is not None:
        raise loader.error(socket_key, f"{problem}: choose a shorter {socket_key}")


def _is_section(hint: Any) -> bool:
    """A section of the configuration: a dataclass, or a NamedTuple (checked first: it is
    also a tuple, which is a list of values)."""
    if not isinstance(hint, type):
        return False
    return dataclasses.is_dataclass(hint) or (issubclass(hint, tuple) and hasattr(hint, "_fields"))


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    names: tuple[str, ...] = cls._fields
    return names


def _field_default(cls: type[Any], name: str) -> Any:
    if dataclasses.is_dataclass(cls):
        return next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return cls._field_defaults.get(name, dataclasses.MISSING)


def configured_paths(config: Config) -> Iterator[tuple[str, Path]]:
    """Every configured path, with its dotted key."""
    for key, value in _leaves(config, ""):
        if isinstance(value, Path):
            yield key, value


def _leaves(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    """Every configured value inside sections, mappings and lists, with its dotted key."""
    if _is_section(type(value)):
        for name in _field_names(type(value)):
            if name != "file":
                yield from _leaves(getattr(value, name), _join(key, name))
    elif isinstance(value, dict):
        for name, inner in value.items():
            yield from _leaves(inner, _join(key, str(name)))
    elif isinstance(value, tuple):
        for index, inner in enumerate(value):
            yield from _leaves(inner, f"{key}[{index}]")
    else:
        yield key, value
