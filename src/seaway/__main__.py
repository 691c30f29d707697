"""``python -m seaway`` is the ``seaway`` command."""

import sys

from seaway.cli import main

sys.exit(main())
