"""``sidekick web``: serve the dashboard with the daemon's config file."""

from __future__ import annotations

import argparse
import getpass
import logging
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
    logger.info("dashboard on http://%s:%d/%s", host, port, " (read-only)" if read_only else "")
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=5)
    return 0
