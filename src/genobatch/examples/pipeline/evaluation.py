"""Benchmarking calls against the truth set: precision, recall and F1, matching alleles and ignoring genotypes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .layout import write_json
from .truth import HET_FRACTION, SNV_FRACTION, Variant, read_vcf

#: How the evaluate stage's metrics are obtained, published with them (the report states it).
METHOD = (
    "Truth set: the variants simulated into each sample's reads (about one per 1,500 bp, "
    f"{SNV_FRACTION:.0%} SNVs, {HET_FRACTION:.0%} heterozygous, drawn from the run's seed). Calls (bcftools "
    "mpileup | call -mv | norm -m -any) match a truth variant on contig, position, REF and ALT; genotype is not "
    "required for a match. Genotype concordance is the share of matched calls with the truth's zygosity."
)


def compare(truth: list[Variant], calls: list[Variant]) -> dict[str, Any]:
    """Match variants on (contig, position, REF, ALT); both sides must be normalised the same way (they are:
    the truth set is generated left-aligned and biallelic, the calls go through ``bcftools norm -m -any``).

    Returns overall and per-kind (snv/indel) counts and rates, plus how often a matched call also has the truth's
    genotype (zygosity), which is reported but does not count against precision or recall.
    """
    report: dict[str, Any] = {}
    for kind in ("all", "snv", "indel"):
        expected = {v.key: v for v in truth if kind in ("all", v.kind)}
        called = {v.key: v for v in calls if kind in ("all", v.kind)}
        matched = expected.keys() & called.keys()
        precision = len(matched) / len(called) if called else 1.0
        recall = len(matched) / len(expected) if expected else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        same_zygosity = sum(sum(expected[k].haplotypes) == sum(called[k].haplotypes) for k in matched)
        report[kind] = {
            "truth": len(expected),
            "called": len(called),
            "true_positives": len(matched),
            "false_positives": len(called) - len(matched),
            "false_negatives": len(expected) - len(matched),
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "genotype_concordance": round(same_zygosity / len(matched), 6) if matched else None,
        }
    overall = report.pop("all")
    return {**overall, "by_kind": report}


def evaluate(truth_vcf: Path, calls_vcf: Path, output: Path) -> dict[str, Any]:
    """Compare a sample's calls with its truth set and write the report as JSON; returns it."""
    truth, calls = read_vcf(truth_vcf), read_vcf(calls_vcf)
    report = compare(truth, calls)
    # The first few misses and false calls by site: enough to look them up in a genome browser.
    expected, called = {v.key for v in truth}, {v.key for v in calls}
    report["false_negative_sites"] = [_site(key) for key in sorted(expected - called)[:20]]
    report["false_positive_sites"] = [_site(key) for key in sorted(called - expected)[:20]]
    write_json(output, report)
    return report


def published(report: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """The metrics the evaluate stage publishes for the run report (genobatch.report.results), with units:
    precision, recall and F1 overall and per variant kind (snv, indel), and genotype concordance."""
    metrics: dict[str, float | None] = {name: report[name] for name in ("precision", "recall", "f1")}
    for kind in ("snv", "indel"):
        for name in ("precision", "recall", "f1"):
            metrics[f"{kind}.{name}"] = report["by_kind"][kind][name]
    metrics["genotype_concordance"] = report["genotype_concordance"]
    return metrics, dict.fromkeys(metrics, "fraction")


def _site(key: tuple[str, int, str, str]) -> str:
    contig, pos, ref, alt = key
    return f"{contig}:{pos}:{ref}>{alt}"
