"""The benchmark report's method: how each figure was computed, stated once for the page and the workbook.

A reader comparing hardware has to know what a number includes (start-up? idle time? overhead?) before
trusting it; the seed benchmark mixed wall-clock time with the tool's own rate and averaged away
stragglers without saying so. Each entry is a heading and one paragraph of plain text.
"""

from __future__ import annotations

from genobatch.benchmark.aggregate import STRAGGLER_FACTOR
from genobatch.benchmark.equivalence import LOOKAHEAD
from genobatch.benchmark.report_table import UnitScale
from genobatch.benchmark.results import BenchmarkResults


def _estimates(results: BenchmarkResults) -> str:
    """The sentence naming the targets whose price is an estimate, or nothing when none is."""
    estimated = sorted({s.target.name for s in results.summaries if s.target.price_estimated})
    if not estimated:
        return ""
    return (
        f" Estimated prices: the price of {', '.join(estimated)} is an estimate (on-demand × the catalog's flat "
        "spot fraction; purchase reads 'spot (estimated price)'), not an observed spot price, so its costs are "
        "estimates too; give the plan a price_per_hour or refresh the catalog for a real one."
    )


def method(results: BenchmarkResults, scale: UnitScale) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs describing every figure in the report."""
    workload = f"{results.workload_name} = {results.workload_units:,.6g} {results.work_unit}"
    overhead = f"{results.overhead_s:g}"
    return [
        (
            "Instance run time",
            "Run time of one instance run (one repeat) = the last shard's stop − the first shard's start, which is "
            "the longest shard when the shards start together. The shards of a repeat run side by side on one "
            "instance, which is billed until the last of them ends, so a straggler costs the whole instance; an "
            "average over shards would hide it. Every figure is the median, low and high over the repeats whose "
            "shards all succeeded; a repeat with a failed shard is left out and noted.",
        ),
        (
            "Run time per workload",
            f"Run time per workload = run time × workload units ÷ units of work in the run (linear scaling), with "
            f"{workload}. Linear scaling also scales start-up inside the measured run, so a small data set "
            f"overstates it. Per {scale.label}: the per-workload figure ÷ {results.workload_units:,.6g} × "
            f"{scale.factor:,.0f}.",
        ),
        (
            "Cost",
            f"Cost per workload = max(60, ⌈overhead + run time per workload⌉) × price per hour ÷ 3600: per-second "
            f"billing with the 60-second minimum, with overhead = {overhead} s (instance boot, image pull: priced, "
            f"not measured) paid once per workload-sized instance run. Cost per {scale.label} = cost per workload "
            f"÷ workload units × {scale.factor:,.0f}. Cost per instance run = max(60, ⌈overhead + run time⌉) × "
            "price ÷ 3600, the measured run as billed. Spot targets are priced at the spot price, on-demand targets "
            "at the on-demand price, each from the dated catalog named in the price source column."
            + _estimates(results),
        ),
        (
            "Throughput",
            f"Measured = units of work ÷ instance run time ({results.work_unit}/s), wall clock, so it includes "
            "container start and model loading. Tool-reported = the sum over the shards of the rate the tool "
            "prints itself (dorado's samples/s, for one, starts counting after the model is loaded), given only "
            "when every shard reported it. The two measure different things and are shown side by side, never "
            "mixed.",
        ),
        (
            "Stragglers",
            f"A shard is a straggler when it ran more than {STRAGGLER_FACTOR:g} × the median of its run's other "
            "shards. Shard spread = longest − shortest shard of a run.",
        ),
        (
            "Equivalence",
            "Two levels, reported separately. Identical records: each output is reduced to normalised records "
            "and hashed (sha256): VCF/BCF header lines matching the plan's ignore patterns (by default only "
            "provenance: the file date, the source, and header lines whose key is a tool's version or command "
            "line; INFO, FILTER and FORMAT definitions are kept) are dropped, records kept verbatim; "
            "BAM/CRAM/SAM header lines matching them (by default every @PG line) are dropped, records compared "
            "as SAM text; compressed text is compared decompressed; other binary files by content; index files "
            "are skipped (they follow from the file they index). Identical = present on every target with "
            "equal digests. Same calls (VCF/BCF only): every record read with pysam and written canonically - "
            "QUAL and floats as 32-bit values (60 = 60.00000), FILTER values and INFO keys sorted, samples by "
            "name, FORMAT fields by key, genotype phasing kept unless the plan sets ignore_phase - so records "
            "equal as VCF content are equal. Which files: when every target ran the same number of shards "
            "they split the data set the same way, so shard i is compared with shard i (output "
            "shard-i/...); otherwise every shard's file of a name is merged - header lines once, records "
            "sorted by contig and position - and the unions are compared. Where digests differ, the records "
            "are compared in order, "
            f"re-synchronising after a difference by reading up to {LOOKAHEAD:,} records ahead, giving "
            "differing records (changed in place), records only in the reference "
            "target's output and records only in the other target's, with the first few of each.",
        ),
    ]
