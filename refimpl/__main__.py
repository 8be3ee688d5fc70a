"""``python -m refimpl``: the same as the ``refimpl`` command.

``python -m`` puts the current folder first on ``sys.path`` (unless Python runs with
``-P``), so a file there named like a standard-library module (``difflib.py``,
``unittest.py``) would be imported instead of it by any later ``import``: numba imports
several such modules lazily, long after start-up. The ``refimpl`` command never has the
current folder on ``sys.path``; here it is taken off again before the command runs, and
``refimpl golden check --impl MODULE:FACTORY`` puts it back only when the user names an
adapter module. Modules imported while Python loaded this package (before this file ran)
were still searched there: run ``refimpl`` or ``python -P -m refimpl`` in a folder you do
not trust.
"""

import os
import sys

from refimpl.cli import drop_current_folder, main

drop_current_folder(sys.path, os.getcwd(), bool(getattr(sys.flags, "safe_path", False)))
sys.exit(main())
