"""The command line of the pipeline: one sub-command per stage, each a self-contained batch job.

    python -m genobatch.examples.pipeline reference --run-dir DIR --samples N [--seed S]
    python -m genobatch.examples.pipeline simulate  --run-dir DIR [--sample I] [--coverage X]
    python -m genobatch.examples.pipeline align|sort|call|stats|evaluate --run-dir DIR [--sample I]

Per-sample stages take ``--sample`` or, when it is omitted, ``AWS_BATCH_JOB_ARRAY_INDEX`` - so one job definition
serves every child of an array job; a job that is not an array child is sample 0. Each stage prints one summary
line (the job's log) and exits non-zero with a message on failure, which is what the scheduler records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import pysam

from . import STAGES, evaluation
from . import stats as alignment_stats
from .alignment import align
from .calling import call_variants
from .evaluation import evaluate
from .genome import contig_lengths, random_genome, read_fasta, write_fasta
from .haplotypes import diploid
from .layout import RunLayout, sample_name, write_json
from .reads import ReadModel, simulate, write_fastq
from .seeding import generator
from .sorting import sort_and_index
from .stats import samtools_stats
from .truth import draw_variants, read_vcf, write_vcf

DEFAULT_SEED = 1
DEFAULT_GENOME_SIZE = 200_000
DEFAULT_CONTIGS = 2
DEFAULT_VARIANT_SPACING = 1_500
DEFAULT_COVERAGE = 30.0
#: genobatch's results contract (genobatch.report.results, README "Results"): a job publishes named metrics by
#: printing this marker and a JSON object on one line of its log. Written out here rather than imported so a stage
#: does not load the report package (matplotlib and all) to print one line.
RESULTS_MARKER = "genobatch:results "


def publish(metrics: dict[str, float | None], units: dict[str, str], method: str | None = None) -> None:
    """Print the results line genobatch's run report and console read from this job's log."""
    document = {"metrics": metrics, "units": units, **({"method": method} if method else {})}
    print(RESULTS_MARKER + json.dumps(document, separators=(",", ":")), flush=True)


def reference_stage(args: argparse.Namespace, layout: RunLayout) -> str:
    """Genome, FASTA index, every sample's truth VCF, and the run manifest the other stages read."""
    lengths = contig_lengths(args.genome_size, args.contigs)
    genome = random_genome(generator(args.seed, "genome"), lengths)
    write_fasta(layout.genome, genome)
    for index in range(args.samples):
        variants = draw_variants(generator(args.seed, "truth", index), genome, args.variant_spacing)
        write_vcf(layout.truth(index), sample_name(index), variants, lengths, layout.genome.name)
    manifest = {
        "seed": args.seed,
        "samples": args.samples,
        "contigs": lengths,
        "genome_size": sum(lengths.values()),
        "variant_spacing": args.variant_spacing,
    }
    write_json(layout.manifest, manifest)  # last: its presence means the whole reference stage finished
    plural = "s" if args.samples != 1 else ""
    return f"{len(lengths)} contigs, {sum(lengths.values())} bp, truth sets for {args.samples} sample{plural}"


def simulate_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    """Reads of one sample from its two haplotypes."""
    seed = layout.read_manifest()["seed"] if args.seed is None else args.seed
    genome = read_fasta(layout.genome)
    haplotypes = diploid(genome, read_vcf(layout.truth(index)))
    model = ReadModel(read_length=args.read_length, paired=not args.single_end)
    reads = simulate(generator(seed, "reads", index), haplotypes, args.coverage, model)
    names = [f"{sample_name(index)}.{number}" for number in range(1, len(reads) + 1)]
    # A single-end rerun must not leave a stale mate-2 file that alignment would pick up.
    layout.reads(index, 2).unlink(missing_ok=True)
    write_fastq(layout.reads(index, 1), names, reads.mate1, reads.quality1)
    if reads.mate2 is not None and reads.quality2 is not None:
        write_fastq(layout.reads(index, 2), names, reads.mate2, reads.quality2)
    layout_kind = "pairs" if model.paired else "single-end reads"
    return f"{len(reads)} {layout_kind} of {model.read_length} bp at {args.coverage:g}x"


def align_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    fastqs = [path for path in (layout.reads(index, 1), layout.reads(index, 2)) if path.exists()]
    if not fastqs:
        raise FileNotFoundError(f"{layout.reads(index, 1)} is missing: run the simulate stage first")
    counts = align(layout.genome, fastqs, layout.aligned(index), sample_name(index))
    return f"{counts['mapped']} of {counts['reads']} reads mapped"


def sort_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    sort_and_index(layout.aligned(index), layout.bam(index))
    return f"{layout.bam(index)} and {layout.bam(index)}.bai written"


def call_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    call_variants(layout.genome, layout.bam(index), layout.calls(index))
    return f"{len(read_vcf(layout.calls(index)))} variant alleles called"


def stats_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    summary = samtools_stats(layout.genome, layout.bam(index), layout.stats_text(index), layout.stats_json(index))
    publish(*alignment_stats.published(summary))
    return (
        f"{summary.get('reads_mapped', 0)} reads mapped, error rate {summary.get('error_rate', 0):.4%}, "
        f"average coverage {summary['average_coverage']:.1f}x"
    )


def evaluate_stage(args: argparse.Namespace, layout: RunLayout, index: int) -> str:
    report = evaluate(layout.truth(index), layout.calls(index), layout.evaluation(index))
    metrics, units = evaluation.published(report)
    publish(metrics, units, evaluation.METHOD)
    return f"precision {report['precision']:.4f}, recall {report['recall']:.4f}, F1 {report['f1']:.4f}"


SampleStage = Callable[[argparse.Namespace, RunLayout, int], str]
SAMPLE_STAGES: dict[str, SampleStage] = {
    "simulate": simulate_stage,
    "align": align_stage,
    "sort": sort_stage,
    "call": call_stage,
    "stats": stats_stage,
    "evaluate": evaluate_stage,
}


STAGE_HELP = {
    "reference": "random reference genome (FASTA + .fai) and every sample's truth variants (VCF + .tbi)",
    "simulate": "a sample's reads from its two haplotypes (gzipped FASTQ)",
    "align": "minimap2 (mappy, sr preset) alignments into an unsorted BAM with the sample's read group",
    "sort": "samtools sort and index: sample.bam + .bai",
    "call": "bcftools mpileup | call -mv | norm: calls.vcf.gz + .tbi",
    "stats": "samtools stats: stats.txt and a stats.json summary",
    "evaluate": "precision, recall and F1 of the calls against the truth set: evaluation.json",
}


def sample_index(option: int | None) -> int:
    """``--sample`` if given, else this array child's index, else 0 (a plain job is a one-sample run)."""
    if option is not None:
        return option
    return int(os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX", "0"))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m genobatch.examples.pipeline", description=__doc__.split("\n")[0])
    stages = root.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in STAGES:
        sub = stages.add_parser(stage, help=STAGE_HELP[stage], description=STAGE_HELP[stage])
        sub.add_argument("--run-dir", type=Path, required=True, help="the run directory shared by all stages")
        if stage == "reference":
            sub.add_argument("--samples", type=int, default=1, help="number of samples to draw truth sets for")
            sub.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the whole run")
            sub.add_argument("--genome-size", type=int, default=DEFAULT_GENOME_SIZE, help="total bases")
            sub.add_argument("--contigs", type=int, default=DEFAULT_CONTIGS, help="number of contigs")
            sub.add_argument(
                "--variant-spacing", type=float, default=DEFAULT_VARIANT_SPACING, help="mean bases between variants"
            )
            continue
        sub.add_argument("--sample", type=int, help="0-based sample index (default: AWS_BATCH_JOB_ARRAY_INDEX or 0)")
        if stage == "simulate":
            sub.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE, help="mean read depth")
            sub.add_argument("--read-length", type=int, default=150, help="bases per read")
            sub.add_argument("--single-end", action="store_true", help="one read per fragment instead of a pair")
            sub.add_argument("--seed", type=int, help="override the run's seed (default: the reference stage's)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; returns its exit status: 0, or 1 after a traceback and a one-line reason on stderr."""
    args = parser().parse_args(argv)
    # Errors only from htslib: bcftools declares INFO/MQ as Integer and htslib then warns on every read of the VCF.
    pysam.set_verbosity(1)
    root = args.run_dir.resolve()
    previous = os.getcwd()
    started = time.perf_counter()
    try:
        if args.stage == "reference":
            root.mkdir(parents=True, exist_ok=True)
        elif not root.is_dir():
            raise FileNotFoundError(f"the run directory does not exist: run the reference stage for {root} first")
        # Work inside the run directory with relative paths: samtools and bcftools write the paths they are given
        # into their outputs (##reference, "The command line was"), and relative ones keep the outputs identical
        # wherever the run directory is. Stages are processes of their own; in-process callers get their working
        # directory back.
        os.chdir(root)
        label, summary = _run(args, RunLayout(Path(".")))
    except Exception as error:
        traceback.print_exc()
        # Last, so that the job log's final line (what a user sees first) says what went wrong and where.
        print(f"{args.stage} failed in {root}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        os.chdir(previous)
    print(f"{label}: {summary} ({time.perf_counter() - started:.2f} s, run directory {root})", flush=True)
    return 0


def _run(args: argparse.Namespace, layout: RunLayout) -> tuple[str, str]:
    """The stage's label for the log and its summary line."""
    if args.stage == "reference":
        if args.samples < 1:
            raise ValueError("--samples must be at least 1")
        return "reference", reference_stage(args, layout)
    index = sample_index(args.sample)
    samples = layout.read_manifest()["samples"]
    if not 0 <= index < samples:
        raise ValueError(f"sample index {index} is outside this run's {samples} samples")
    return f"{args.stage} {sample_name(index)}", SAMPLE_STAGES[args.stage](args, layout, index)
