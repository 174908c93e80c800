"""Example workloads that exercise genobatch the way real users do: ``pipeline`` is a small genomics pipeline."""
