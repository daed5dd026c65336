"""``python -m hieros_lib.training``: the same as ``hieros-train``."""

import sys

from hieros_lib.training import main

sys.exit(main())
