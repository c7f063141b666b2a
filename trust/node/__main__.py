"""``python -m trust.node run NAME ...``: run a node process (see :mod:`trust.node.daemon`)."""

import sys

from trust.node.daemon import main

sys.exit(main())
