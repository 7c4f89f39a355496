from __future__ import annotations

import sys

from sidekick.startup import main

sys.exit(main())
