"""``python -m maestro.data.download``: see :mod:`maestro.data.download.cli`."""

import sys

from maestro.data.download.cli import main

sys.exit(main())
