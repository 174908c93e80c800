"""Tools for the shipped benchmark plans (``examples/bench/``): a file-based aligner built on the
example pipeline, a stand-in basecaller that writes dorado-format log lines, and data preparation."""
