"""``python -m genobatch``: the same as the ``genobatch`` command."""

from genobatch.cli.main import main

main()
