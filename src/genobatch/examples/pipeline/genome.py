"""The synthetic reference genome: seeded random contigs written as an indexed FASTA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam

from .layout import publishing

#: Human-like average GC content; isochore-like regional variation is drawn around it.
MEAN_GC = 0.41
#: Length of a region of constant GC content (real isochores are far longer; this keeps some variation in 200 kb).
GC_BLOCK = 5_000
FASTA_LINE = 60


def contig_lengths(genome_size: int, contigs: int) -> dict[str, int]:
    """Split ``genome_size`` bases into ``contigs`` contigs ``chr1..chrN`` of decreasing length, like a karyotype."""
    if contigs < 1 or genome_size < contigs * 10_000:
        raise ValueError("need at least one contig and 10 kb per contig")
    weights = np.arange(contigs, 0, -1, dtype=float) + contigs  # chr1 about twice chrN for larger N
    lengths = np.floor(genome_size * weights / weights.sum()).astype(int)
    lengths[0] += genome_size - lengths.sum()  # rounding remainder goes to chr1 so the total is exact
    return {f"chr{i + 1}": int(length) for i, length in enumerate(lengths)}


def random_contig(rng: np.random.Generator, length: int) -> bytes:
    """A random sequence of A/C/G/T (no Ns) whose GC content varies block by block around ``MEAN_GC``."""
    blocks = -(-length // GC_BLOCK)
    block_gc = np.clip(rng.normal(MEAN_GC, 0.04, blocks), 0.30, 0.60)
    gc = np.repeat(block_gc, GC_BLOCK)[:length]
    strong = rng.random(length) < gc  # G or C
    second = rng.random(length) < 0.5  # which of the pair
    bases = np.where(strong, np.where(second, ord("G"), ord("C")), np.where(second, ord("T"), ord("A")))
    return bases.astype(np.uint8).tobytes()


def random_genome(rng: np.random.Generator, lengths: dict[str, int]) -> dict[str, bytes]:
    """Contigs by name, in the order of ``lengths``."""
    return {name: random_contig(rng, length) for name, length in lengths.items()}


def write_fasta(path: Path, genome: dict[str, bytes]) -> None:
    """Write ``genome`` as FASTA with 60-column lines and build its ``.fai`` index with ``pysam.faidx``."""
    with publishing(path, ".fai") as temporary:
        with temporary.open("wb") as out:
            for name, sequence in genome.items():
                out.write(f">{name}\n".encode())
                out.writelines(sequence[i : i + FASTA_LINE] + b"\n" for i in range(0, len(sequence), FASTA_LINE))
        pysam.faidx(str(temporary))


def read_fasta(path: Path) -> dict[str, bytes]:
    """Contigs of an indexed FASTA by name, in file order."""
    with pysam.FastaFile(str(path)) as fasta:
        return {name: fasta.fetch(name).encode() for name in fasta.references}
