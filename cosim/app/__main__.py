"""``python -m cosim.app``: the same as the ``snncosim`` console script."""

import sys

from .cli import main

sys.exit(main())
