"""``python -m genobatch.examples.pipeline <stage> ...``: run one pipeline stage (see ``cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
