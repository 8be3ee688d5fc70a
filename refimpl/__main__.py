"""``python -m refimpl``: the same as the ``refimpl`` command."""

import sys

from refimpl.cli import main

sys.exit(main())
