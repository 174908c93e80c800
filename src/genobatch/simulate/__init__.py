"""Capacity planning: ``genobatch simulate PLAN`` runs the real scheduler under a virtual clock.

``plan`` (the YAML plan, validated), ``runtime`` (run-time distributions, given or fitted from a
past run's trace), ``fleet`` (a compute environment's instances as the scheduler's capacity pool:
scaling delay, scale-down, spot interruptions), ``simulator`` (the event loop around
:class:`genobatch.core.scheduler.Scheduler`), ``outcome`` (makespan, waits, utilisation and cost
of one simulated run, priced by :mod:`genobatch.cost`), ``summary`` (percentiles over seeds and the
JSON document).
"""
