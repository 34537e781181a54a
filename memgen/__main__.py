"""``python -m memgen``: see :mod:`memgen.cli`."""

import sys

from .cli import main

sys.exit(main())
