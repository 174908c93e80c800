"""Workflows shipped as examples: Amazon States Language definitions that run on genobatch's Step Functions API.

``genomics.asl.json`` is ``genobatch demo``'s pipeline as a state machine (see :mod:`.genomics`).
"""
