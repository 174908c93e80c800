"""The run directory: where every stage reads its inputs and writes its outputs.

Stages share nothing but files, so the layout is the contract between them. Outputs are written under a temporary
name and renamed into place, so a retried or killed job never leaves a half-written file that a later stage (or the
retry itself) would mistake for a finished one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Sample ``i`` is ``sample<i>``: the same rule genobatch's trace applies to an array tagged
#: ``genobatch:sample-prefix=sample``, so cost per sample lines up with the run directory.
SAMPLE_PREFIX = "sample"


#: A sample's final outputs, as globs relative to its folder: what a user downloads. The rest (reads, the unsorted
#: BAM, the truth set) are intermediate or simulated inputs; the run report prices only these as downloaded.
DECLARED_OUTPUTS: tuple[str, ...] = (
    "sample.bam",
    "sample.bam.bai",
    "calls.vcf.gz",
    "calls.vcf.gz.tbi",
    "stats.txt",
    "stats.json",
    "evaluation.json",
)


def sample_name(index: int) -> str:
    """The name of sample ``index`` (0-based, as AWS_BATCH_JOB_ARRAY_INDEX): ``sample0``, ``sample1``, ..."""
    return f"{SAMPLE_PREFIX}{index}"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one pipeline run rooted at ``root``; ``<root>/<sample>/`` holds one sample's files."""

    root: Path

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def genome(self) -> Path:
        """The reference FASTA (with ``.fai`` beside it)."""
        return self.reference_dir / "genome.fa"

    @property
    def manifest(self) -> Path:
        """The reference stage's parameters, read by later stages (sample count, seed, genome size)."""
        return self.reference_dir / "run.json"

    def sample_dir(self, index: int) -> Path:
        return self.root / sample_name(index)

    def truth(self, index: int) -> Path:
        """The sample's known variants, bgzipped VCF with a ``.tbi`` index."""
        return self.sample_dir(index) / "truth.vcf.gz"

    def reads(self, index: int, mate: int) -> Path:
        """Gzipped FASTQ of mate 1 or 2 (single-end runs have only mate 1)."""
        return self.sample_dir(index) / f"reads_{mate}.fastq.gz"

    def aligned(self, index: int) -> Path:
        """Alignments in read order, as the aligner produced them."""
        return self.sample_dir(index) / "aligned.unsorted.bam"

    def bam(self, index: int) -> Path:
        """Coordinate-sorted alignments with a ``.bai`` index."""
        return self.sample_dir(index) / "sample.bam"

    def calls(self, index: int) -> Path:
        """Normalised variant calls, bgzipped VCF with a ``.tbi`` index."""
        return self.sample_dir(index) / "calls.vcf.gz"

    def stats_text(self, index: int) -> Path:
        return self.sample_dir(index) / "stats.txt"

    def stats_json(self, index: int) -> Path:
        return self.sample_dir(index) / "stats.json"

    def evaluation(self, index: int) -> Path:
        return self.sample_dir(index) / "evaluation.json"

    def read_manifest(self) -> dict[str, Any]:
        """The reference stage's parameters; a clear error if the reference stage has not run."""
        if not self.manifest.exists():
            raise FileNotFoundError(f"{self.manifest} is missing: run the reference stage for this run directory first")
        return json.loads(self.manifest.read_text())


def temporary_path(final: Path) -> Path:
    """A sibling of ``final`` that keeps its suffixes (tools pick formats from them) and is unique to this process."""
    return final.with_name(f".tmp{os.getpid()}.{final.name}")


@contextmanager
def publishing(final: Path, *companions: str) -> Iterator[Path]:
    """Yield a temporary path to write ``final`` to; on success rename it (and its ``companions``, e.g. ``.tbi``
    index suffixes written next to it) into place, on failure remove them."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(final)
    try:
        yield temporary
        # Companions (indexes) first: once ``final`` appears, everything that goes with it is already there.
        for suffix in companions:
            os.replace(f"{temporary}{suffix}", f"{final}{suffix}")
        os.replace(temporary, final)
    finally:
        for leftover in [temporary, *(Path(f"{temporary}{suffix}") for suffix in companions)]:
            leftover.unlink(missing_ok=True)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as stable, human-readable JSON (sorted keys, so reruns are byte-identical)."""
    with publishing(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
