from __future__ import annotations

import sys

from sidekick.cli import main

sys.exit(main())
