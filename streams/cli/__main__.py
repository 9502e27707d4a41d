"""``python -m streams.cli``: the ``vigil`` command without its console script."""

import sys

from streams.cli import main

sys.exit(main())
