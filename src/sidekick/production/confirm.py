"""Asking a person before production changes; scripts pass ``--yes``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO


def confirmed(
    question: str,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    ask: Callable[[str], str] = input,
) -> bool | None:
    """True when confirmed, False when declined, None when there is no terminal to ask on."""
    if yes:
        return True
    terminal = stdin or sys.stdin
    if not terminal.isatty():
        return None
    try:
        answer = ask(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
