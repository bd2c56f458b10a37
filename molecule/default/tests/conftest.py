"""The testinfra helpers the molecule scenarios share (molecule/shared/testinfra_pg.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared"))

from testinfra_pg import db  # noqa: E402,F401  (the fixture)
