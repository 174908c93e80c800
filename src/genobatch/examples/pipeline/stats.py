"""Alignment QC: ``samtools stats`` via pysam, kept as text and summarised as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pysam

from .layout import publishing, write_json

#: ``SN`` (summary numbers) fields of samtools stats worth a glance, under the JSON keys they get.
SUMMARY_FIELDS = {
    "raw total sequences": "reads_total",
    "reads mapped": "reads_mapped",
    "reads properly paired": "reads_properly_paired",
    "bases mapped (cigar)": "bases_mapped_cigar",
    "error rate": "error_rate",
    "average length": "average_read_length",
    "insert size average": "insert_size_average",
    "average quality": "average_quality",
}


def samtools_stats(reference: Path, bam: Path, text_output: Path, json_output: Path) -> dict[str, Any]:
    """Write samtools stats' report and a JSON summary (with average coverage over the genome); return the summary."""
    report = pysam.samtools.stats("-r", str(reference), str(bam))
    with publishing(text_output) as temporary:
        temporary.write_text(report)
    with pysam.FastaFile(str(reference)) as fasta:
        genome_length = sum(fasta.lengths)
    summary = summarise(report, genome_length)
    write_json(json_output, summary)
    return summary


def published(summary: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """The metrics the stats stage publishes for the run report (genobatch.report.results), with units."""
    metrics = {
        "coverage": summary.get("average_coverage"),
        "mapped_fraction": summary.get("mapped_fraction"),
        "error_rate": summary.get("error_rate"),
    }
    return metrics, {"coverage": "x", "mapped_fraction": "fraction", "error_rate": "fraction"}


def summarise(report: str, genome_length: int) -> dict[str, Any]:
    """Pick the summary numbers out of a samtools stats report and derive coverage and mapped fraction."""
    summary: dict[str, Any] = {}
    for line in report.splitlines():
        if not line.startswith("SN\t"):
            continue
        _, field, value = line.split("\t")[:3]
        key = SUMMARY_FIELDS.get(field.rstrip(":"))
        if key is not None:
            number = float(value)
            summary[key] = int(number) if number.is_integer() and key != "error_rate" else number
    mapped, total = summary.get("reads_mapped", 0), summary.get("reads_total", 0)
    summary["mapped_fraction"] = round(mapped / total, 6) if total else 0.0
    summary["average_coverage"] = round(summary.get("bases_mapped_cigar", 0) / genome_length, 3)
    summary["genome_length"] = genome_length
    return summary
