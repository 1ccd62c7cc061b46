"""`python -m bench.inbox_bench`: see the package's docstring (also the `--help` text)."""

import sys

from bench.inbox_bench.run import main

if __name__ == "__main__":
    sys.exit(main())
