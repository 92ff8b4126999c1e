"""``python -m minae``: the same as the ``minae`` command."""

import sys

from .cli import main

sys.exit(main())
