"""``sidekick web``: serve the dashboard with the daemon's config file."""

from __future__ import annotations

import argparse
import errno
import getpass
import logging
import os
import socket
import sys

from aiohttp import web

from sidekick.config import Config
from sidekick.errors import ConfigError
from sidekick.logs import setup_logging
from sidekick.web.app import make_app
from sidekick.web.auth import hash_password, read_credentials

logger = logging.getLogger(__name__)


def run(config: Config, args: argparse.Namespace) -> int:
    if args.hash:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
        print(f"{args.hash}:{hash_password(password.rstrip(chr(10)))}")
        return 0
    setup_logging("text", args.log_level)
    secret_file = config.web.secret_file
    if secret_file is None:
        raise ConfigError(str(config.file or "(defaults)"), "web.secret_file", "is required")
    read_only = args.read_only or config.web.read_only
    app = make_app(config, read_credentials(secret_file), read_only=read_only)
    host, port = args.host or config.web.host, args.port or config.web.port
    mode = " (read-only)" if read_only else ""

    def listening(_: str) -> None:
        # run_app calls this once the socket listens: a port it cannot take is never announced.
        logger.info("dashboard on http://%s:%d/%s", host, port, mode)

    try:
        web.run_app(app, host=host, port=port, print=listening, access_log=None, shutdown_timeout=5)
    except OSError as exc:
        if not _is_bind_error(exc):
            raise
        raise _bind_error(config, args, f"{host}:{port}", exc) from None
    return 0


# Why a listening socket could not be made: the port is taken or privileged, or the host is
# not an address of this machine (or no address at all).
_PORT_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EPERM})
_HOST_ERRORS = frozenset({errno.EADDRNOTAVAIL})


def _is_bind_error(exc: OSError) -> bool:
    return isinstance(exc, socket.gaierror) or exc.errno in _PORT_ERRORS | _HOST_ERRORS


def _bind_error(
    config: Config, args: argparse.Namespace, address: str, exc: OSError
) -> ConfigError:
    """One line naming the address and the setting that chooses it, instead of a traceback."""
    is_port = exc.errno in _PORT_ERRORS
    name, given = ("port", args.port) if is_port else ("host", args.host)
    why = (
        (exc.strerror or str(exc))
        if isinstance(exc, socket.gaierror)
        else os.strerror(exc.errno or 0)
    )
    fix = "another port" if is_port else "an address of this machine"
    source = f"--{name}" if given else f"web.{name} (or SIDEKICK_WEB__{name.upper()})"
    return ConfigError(
        str(config.file or "(defaults)"),
        f"web.{name}",
        f"cannot listen on {address}: {why.lower()}; choose {fix} with {source}",
    )
