"""Files the product writes and reads back, whatever version of sidekick wrote them.

Each such JSON file carries a format version. A reader ignores keys it does
not know (a newer minor version added them), gives missing or mistyped keys
their defaults (an older version wrote it), and refuses a newer major format
with one line that says what to do, never with a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from sidekick.errors import StateFileError

logger = logging.getLogger(__name__)

VERSION_KEY = "version"

Record = TypeVar("Record")


def dump(record: Any, version: int) -> str:
    """The record as JSON, stamped with its format version."""
    return json.dumps({VERSION_KEY: version, **dataclasses.asdict(record)})


def read(cls: type[Record], path: Path, version: int) -> Record | None:
    """The record in ``path``; None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    return load(cls, text, path, version)


def load(cls: type[Record], text: str, file: Path, version: int) -> Record:
    """A ``cls`` from JSON written by any version up to major ``version``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateFileError(str(file), f"not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise StateFileError(str(file), "does not hold a JSON object")
    _check_version(data.get(VERSION_KEY, 1), file, version)
    return cls(**_known_values(cls, data, file))


def _check_version(found: Any, file: Path, version: int) -> None:
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise StateFileError(str(file), f"unknown format version {found!r}")
    if found > version:
        raise StateFileError(
            str(file),
            f"written by a newer sidekick (format {found}; this one reads up to {version})",
            "upgrade sidekick, or remove the file to start it afresh",
        )


def _known_values(cls: type[Any], data: dict[str, Any], file: Path) -> dict[str, Any]:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        required = (
            item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        )
        present = item.name in data and fits(hints[item.name], data[item.name])
        if present:
            values[item.name] = data[item.name]
        elif required:
            raise StateFileError(str(file), f"lacks {item.name!r} or holds it with another type")
        elif item.name in data:
            logger.warning(
                "%s: ignoring %s=%r of an unexpected type", file, item.name, data[item.name]
            )
    return values


def fits(hint: Any, value: Any) -> bool:
    """Whether a JSON value matches a type hint (float takes whole numbers, bool is no number)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(fits(arg, value) for arg in get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(fits(get_args(hint)[0], v) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(fits(get_args(hint)[1], v) for v in value.values())
    return _scalar_fits(hint, value)


def _scalar_fits(hint: Any, value: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None) or isinstance(value, bool):
        return type(value) is hint
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)
