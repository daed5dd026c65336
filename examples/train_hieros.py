"""Train Hieros from the command line: a thin wrapper over :func:`hieros_lib.training.main`.

    python examples/train_hieros.py                       # the cpu-demo preset (about 10 minutes)
    python examples/train_hieros.py --preset atari100k env.spec=atari:Breakout run.device=cuda
    python examples/train_hieros.py --help

The same command is installed as ``hieros-train``.
"""

from __future__ import annotations

import sys

from hieros_lib.training import main

if __name__ == "__main__":
    sys.exit(main())
