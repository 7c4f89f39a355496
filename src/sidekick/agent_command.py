"""An agent profile's command template: placeholders, and where they must never go.

A profile's command is an argument list whose ``{next_action}``, ``{project}``
and ``{directory}`` are filled argument by argument, so the row's text is data
to the program it is given to. It stops being data when the argument is code
for an interpreter: the script of ``sh -c``, ``python -c``, ``perl -e``, a
command line ``ssh`` hands to the remote shell. There the person who types
``$(rm -rf ~)`` into the list runs it on the host, so such a profile is
refused when the configuration loads. The row's fields are given to every
command as environment variables (:data:`FIELD_VARIABLES`) instead, which a
script quotes (``"$SIDEKICK_NEXT_ACTION"``) and never executes.

Linux limits one argument or environment string to :data:`MAX_ARG_BYTES`
(``MAX_ARG_STRLEN``, 128 KiB) and all of them together to ``ARG_MAX``; a
prompt of any length reaches the agent on its standard input instead.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PLACEHOLDERS = ("next_action", "project", "directory")
FIELD_VARIABLES = {
    "next_action": "SIDEKICK_NEXT_ACTION",
    "project": "SIDEKICK_PROJECT",
    "directory": "SIDEKICK_DIRECTORY",
}
MAX_ARG_BYTES = 128 * 1024
"""Linux's MAX_ARG_STRLEN: one argv or environment string, its terminating NUL included."""
_POINTER_BYTES = 8
_FALLBACK_ARG_MAX = 2 * 1024 * 1024

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_VERSION_SUFFIX = re.compile(r"[0-9.]+$")

SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "yash", "busybox"}
)
# Programs whose named option takes code (the option's value is run, not read).
CODE_OPTIONS: Mapping[str, frozenset[str]] = {
    "python": frozenset({"-c"}),
    "pypy": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "nodejs": frozenset({"-e", "--eval", "-p", "--print"}),
    "bun": frozenset({"-e", "--eval", "-p", "--print"}),
    "deno": frozenset({"eval"}),
    "php": frozenset({"-r"}),
    "lua": frozenset({"-e"}),
    "luajit": frozenset({"-e"}),
    "rscript": frozenset({"-e"}),
    "osascript": frozenset({"-e"}),
    "pwsh": frozenset({"-c", "-command", "-encodedcommand", "-ec"}),
    "powershell": frozenset({"-c", "-command", "-encodedcommand", "-ec"}),
    "su": frozenset({"-c", "--command"}),
    "runuser": frozenset({"-c", "--command"}),
    "script": frozenset({"-c", "--command"}),
    "flock": frozenset({"-c", "--command"}),
    "env": frozenset({"-S", "--split-string"}),
}
# Programs whose first operand is a program in their own language.
PROGRAM_OPERAND = frozenset({"awk", "gawk", "mawk", "nawk", "sed", "jq"})
# Programs that join their remaining arguments into a line for a shell.
SHELL_LINE = frozenset({"ssh", "watch", "eval"})


@dataclass(frozen=True)
class UnsafePlaceholder:
    """A placeholder that would be run as code: which argument and by what."""

    index: int
    argument: str
    interpreter: str

    def problem(self) -> str:
        variables = ", ".join(f"${name}" for name in FIELD_VARIABLES.values())
        return (
            f"a placeholder in code run by {self.interpreter} would execute the list's text; "
            f"use the environment variables ({variables}) in the script, quoted "
            '(for example "$SIDEKICK_NEXT_ACTION"), or pass the field as its own argument'
        )


def has_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def render(template: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """Fill placeholders argument by argument; other braces stay as they are."""
    return tuple(fill(argument, values) for argument in template)


def fill(text: str, values: Mapping[str, str]) -> str:
    # One pass: a value that itself reads "{project}" is never filled again.
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def encodable(text: str) -> str:
    """Text exec can carry: a lone surrogate (an undecodable byte kept by
    ``surrogateescape``, or worse) and a NUL (which ends a C string) become "?"."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")


def field_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The row's fields as variables; one too long for an environment string is left out."""
    env = {
        FIELD_VARIABLES[name]: value for name, value in values.items() if name in FIELD_VARIABLES
    }
    return {name: value for name, value in env.items() if fits_one_string(f"{name}={value}")}


def fits_one_string(text: str) -> bool:
    return len(text.encode("utf-8", "surrogateescape")) < MAX_ARG_BYTES


def program_name(argument: str) -> str:
    """``/usr/bin/python3.11`` → ``python``: the kind of program, not its path or version."""
    base = argument.rsplit("/", 1)[-1].casefold()
    stripped = _VERSION_SUFFIX.sub("", base)
    return stripped or base


def unsafe_placeholders(command: Sequence[str], stdin: str = "") -> list[UnsafePlaceholder]:
    """Every placeholder that an interpreter in ``command`` would run as code."""
    found: list[UnsafePlaceholder] = []
    for index, argument in enumerate(command):
        found.extend(_code_of(command, index, program_name(argument)))
    if has_placeholder(stdin) and _reads_program_from_stdin(command):
        found.append(UnsafePlaceholder(len(command), stdin, program_name(command[0])))
    return found


def option_like_placeholders(command: Sequence[str]) -> list[int]:
    """Claude Code arguments that start with a placeholder and come before ``--``.

    ``claude -p "{next_action}"`` reads a Next Action written as a markdown list
    (``- fix the flaky login test``) as an unknown option and fails; one after a
    variadic option (``--allowedTools Bash``) becomes one more tool. After ``--``,
    or on stdin (the default profile), the text is the prompt whatever it starts with.
    """
    if not command or program_name(command[0]) != "claude":
        return []
    found = []
    for index, argument in enumerate(command[1:], start=1):
        if argument == "--":
            break
        if _PLACEHOLDER.match(argument):
            found.append(index)
    return found


def _code_of(command: Sequence[str], at: int, program: str) -> Iterable[UnsafePlaceholder]:
    rest = command[at + 1 :]
    if program in SHELLS:
        indexes = _shell_script(rest)
    elif program in CODE_OPTIONS:
        indexes = _option_values(rest, CODE_OPTIONS[program])
    elif program in PROGRAM_OPERAND:
        indexes = _first_operand(rest)
    elif program in SHELL_LINE:
        indexes = list(range(len(rest)))
    else:
        indexes = []
    for offset in indexes:
        if has_placeholder(rest[offset]):
            yield UnsafePlaceholder(at + 1 + offset, rest[offset], program)


def _is_short_cluster(argument: str) -> bool:
    return len(argument) > 1 and argument[0] in "-+" and argument[1] != "-"


def _shell_script(rest: Sequence[str]) -> list[int]:
    """``sh -c SCRIPT``, ``bash -lc SCRIPT``, ``sh -e -c SCRIPT``: SCRIPT's index."""
    offset = 0
    while offset < len(rest):
        argument = rest[offset]
        if argument.startswith("--command="):  # fish
            return [offset]
        if argument == "--command":
            return [offset + 1] if offset + 1 < len(rest) else []
        if argument in ("--", "-") or not (_is_short_cluster(argument) or argument[:2] == "--"):
            return []
        if argument[:1] in "-+" and argument[1:] in ("o", "O"):
            offset += 2  # -o pipefail: the option's value is not the script
            continue
        if argument[:2] != "--" and "c" in argument[1:]:
            return _first_non_option(rest, offset + 1)
        offset += 1
    return []


def _first_non_option(rest: Sequence[str], start: int) -> list[int]:
    script = next((i for i in range(start, len(rest)) if not _is_short_cluster(rest[i])), None)
    return [] if script is None else [script]


def _option_values(rest: Sequence[str], options: frozenset[str]) -> list[int]:
    indexes: list[int] = []
    for offset, argument in enumerate(rest):
        lowered = argument.casefold()
        if (argument in options or lowered in options) and offset + 1 < len(rest):
            indexes.append(offset + 1)
        elif any(lowered.startswith(option) and len(option) == 2 for option in options):
            indexes.append(offset)  # the code attached: -c'print(1)', -e'...'
        elif any(lowered.startswith(option + "=") for option in options):
            indexes.append(offset)
    return indexes


def _first_operand(rest: Sequence[str]) -> list[int]:
    indexes = [i + 1 for i, argument in enumerate(rest[:-1]) if argument in ("-e", "--expression")]
    operand = next((i for i, argument in enumerate(rest) if not argument.startswith("-")), None)
    return indexes if operand is None or indexes else [operand]


def _reads_program_from_stdin(command: Sequence[str]) -> bool:
    """A bare shell or interpreter (``[sh]``, ``[python3]``, ``[bash, -s]``) runs its stdin."""
    program = program_name(command[0])
    if program not in SHELLS and program not in CODE_OPTIONS:
        return False
    rest = command[1:]
    if _shell_script(rest):
        return False
    options = list(itertools.takewhile(lambda argument: argument.startswith("-"), rest))
    if program in SHELLS and any(_is_short_cluster(a) and "s" in a[1:] for a in options):
        return True  # sh -s ARGS: commands from stdin, ARGS as $1...
    return len(options) == len(rest)


def argument_limit() -> int:
    """ARG_MAX: the bytes one exec may carry in argv and environment together."""
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        return _FALLBACK_ARG_MAX
    return value if value > 0 else _FALLBACK_ARG_MAX


def exec_size(strings: Iterable[str]) -> int:
    """What exec counts for these strings: their bytes, a NUL and a pointer each."""
    return sum(len(s.encode("utf-8", "surrogateescape")) + 1 + _POINTER_BYTES for s in strings)


def oversized(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Why this argv and environment cannot be exec'd on Linux, or "" when they can."""
    for index, argument in enumerate(argv):
        if not fits_one_string(argument):
            size = len(argument.encode("utf-8", "surrogateescape"))
            return (
                f"argument {index} is {size} bytes, over the {MAX_ARG_BYTES}-byte limit of one "
                "argument; give the text on standard input (the profile's stdin) instead"
            )
    for name, value in env.items():
        if not fits_one_string(f"{name}={value}"):
            return (
                f"environment variable {name} is over the {MAX_ARG_BYTES}-byte limit of one string"
            )
    inherited = (f"{k}={v}" for k, v in os.environ.items() if k not in env)
    total = exec_size(argv) + exec_size(f"{k}={v}" for k, v in env.items()) + exec_size(inherited)
    limit = argument_limit()
    if total > limit:
        return f"the command and its environment take {total} bytes, over this system's {limit}"
    return ""
