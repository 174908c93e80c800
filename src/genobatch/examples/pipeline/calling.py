"""Germline variant calling: ``bcftools mpileup | bcftools call -mv | bcftools norm`` via pysam.

The pipe goes through uncompressed BCF files: pysam runs each bcftools command in-process, one after the other.
pysam's dispatcher captures stdout by default and then ignores ``-o``, sending the output to the capture instead;
``catch_stdout=False`` makes bcftools honour ``-o`` and write straight to the file.
Calls are normalised against the reference (indels left-aligned, multi-allelic sites split into one record per ALT)
so they compare allele for allele with the truth set, as any benchmarking of calls would do.
"""

from __future__ import annotations

from pathlib import Path

import pysam
import pysam.bcftools

from .layout import publishing, temporary_path

#: Ignore bases below Q13 (bcftools' default) and reads whose placement is ambiguous (MAPQ 0) - repeats carry none.
MIN_BASE_QUALITY = 13
MIN_MAPPING_QUALITY = 1


def call_variants(reference: Path, bam: Path, output: Path) -> None:
    """Write ``output`` (bgzipped VCF of variant sites) and ``output.tbi`` from a sorted, indexed BAM."""
    pileup = temporary_path(output.parent / "pileup.bcf")
    raw = temporary_path(output.parent / "raw-calls.bcf")
    try:
        quality = ["-q", str(MIN_MAPPING_QUALITY), "-Q", str(MIN_BASE_QUALITY)]
        annotations = ["-a", "FORMAT/AD,FORMAT/DP"]
        _bcftools("mpileup", "-f", str(reference), *quality, *annotations, "-Ou", "-o", str(pileup), str(bam))
        _bcftools("call", "-m", "-v", "-Ou", "-o", str(raw), str(pileup))
        with publishing(output, ".tbi") as temporary:
            _bcftools("norm", "-f", str(reference), "-m", "-any", "-Oz", "-o", str(temporary), str(raw))
            pysam.bcftools.index("-t", "-o", str(temporary) + ".tbi", str(temporary), catch_stdout=False)
    finally:
        pileup.unlink(missing_ok=True)
        raw.unlink(missing_ok=True)


def _bcftools(command: str, *args: str) -> None:
    """Run ``bcftools <command> --no-version ARGS`` in-process, writing where ``-o`` says.

    ``--no-version`` leaves out the ##bcftools_*Command header lines, which would carry this run's paths.
    """
    getattr(pysam.bcftools, command)("--no-version", *args, catch_stdout=False)
