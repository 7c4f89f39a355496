"""The options of ``sidekick web``; argparse only, so building the command line stays fast."""

from __future__ import annotations

import argparse


def port(text: str) -> int:
    """A TCP port, refused here: past 65535 the server died with an OverflowError."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port (1 to 65535)")
    return number


def register(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", help="address to listen on (default: web.host, 127.0.0.1)")
    command.add_argument("--port", type=port, help="port to listen on (default: web.port)")
    command.add_argument(
        "--read-only", action="store_true", help="offer no actions at all (or web.read_only)"
    )
    command.add_argument(
        "--hash",
        metavar="NAME",
        help="read a password and print the secret file's line for NAME, then exit",
    )
    command.add_argument("--log-level", default="INFO")
