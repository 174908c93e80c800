"""The ``genobatch`` command line: a click group (:mod:`.main`) and one module per topic."""
