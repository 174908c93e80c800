"""Coordinate sorting and indexing of a sample's alignments: ``samtools sort`` and ``samtools index`` via pysam."""

from __future__ import annotations

from pathlib import Path

import pysam

from .layout import publishing


def sort_and_index(unsorted: Path, output: Path) -> None:
    """Write ``output`` (coordinate-sorted BAM) and ``output.bai`` from ``unsorted``.

    ``--no-PG`` keeps samtools from adding a @PG line with this run's file paths, so the same input sorts to the same
    bytes wherever the run directory is. Sorting spills to temporary files next to the output, not in /tmp, so
    concurrent samples of other runs never share a prefix.
    """
    with publishing(output, ".bai") as temporary:
        pysam.sort("--no-PG", "-T", str(temporary) + ".sorting", "-o", str(temporary), str(unsorted))
        pysam.index(str(temporary), str(temporary) + ".bai")
