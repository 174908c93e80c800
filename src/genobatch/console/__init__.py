"""The web console served by ``genobatch server`` (see :mod:`genobatch.console.app`)."""
