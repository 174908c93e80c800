"""A sample's truth set: the known variants its reads are simulated from, as a bgzipped, tabix-indexed VCF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

from .layout import publishing

BASES = "ACGT"
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
#: Variants keep this far from contig ends, where read depth falls off and no caller could find them.
END_MARGIN = 500
#: At least this many bases between variants, so no two fall into one indel's reach or one multi-allelic site.
MIN_GAP = 60
SNV_FRACTION = 0.8
HET_FRACTION = 0.6
MAX_INDEL = 6


@dataclass(frozen=True)
class Variant:
    """One biallelic variant in VCF terms (1-based ``pos``) with a phased diploid genotype (0 = REF, 1 = ALT)."""

    contig: str
    pos: int
    ref: str
    alt: str
    haplotypes: tuple[int, int]

    @property
    def key(self) -> tuple[str, int, str, str]:
        """What evaluation matches on: site and alleles, regardless of genotype."""
        return (self.contig, self.pos, self.ref, self.alt)

    @property
    def kind(self) -> str:
        return "snv" if len(self.ref) == len(self.alt) == 1 else "indel"


def draw_variants(rng: np.random.Generator, genome: dict[str, bytes], mean_spacing: float) -> list[Variant]:
    """SNVs and short indels, about one per ``mean_spacing`` bases, 60 % heterozygous.

    Indels are drawn already left-aligned (the form ``bcftools norm`` produces), so truth and normalised calls are
    compared allele for allele. SNVs favour transitions 2:1, as in human data.
    """
    variants: list[Variant] = []
    for contig, sequence in genome.items():
        text = sequence.decode()
        position = END_MARGIN + int(rng.exponential(mean_spacing - MIN_GAP))
        while position < len(text) - END_MARGIN:
            variants.append(_variant_at(rng, contig, text, position))
            position += len(variants[-1].ref) + MIN_GAP + int(rng.exponential(mean_spacing - MIN_GAP))
    return variants


def _variant_at(rng: np.random.Generator, contig: str, text: str, index: int) -> Variant:
    """A random variant anchored at 0-based ``index`` of ``text``."""
    haplotypes = (1, 1) if rng.random() >= HET_FRACTION else ((0, 1) if rng.random() < 0.5 else (1, 0))
    roll = rng.random()
    ref_base = text[index]
    if roll < SNV_FRACTION:
        if rng.random() < 2 / 3:
            alt = TRANSITION[ref_base]
        else:
            alt = str(rng.choice([b for b in BASES if b not in (ref_base, TRANSITION[ref_base])]))
        return Variant(contig, index + 1, ref_base, alt, haplotypes)
    length = 1 + min(int(rng.geometric(0.45)) - 1, MAX_INDEL - 1)  # mostly 1-2 bp, as in real indels
    if roll < SNV_FRACTION + (1 - SNV_FRACTION) / 2:
        # Deletion of text[index+1 : index+1+length]: it could slide left iff its last base equals the anchor.
        while index > 0 and text[index + length] == text[index]:
            index -= 1
        return Variant(contig, index + 1, text[index : index + 1 + length], text[index], haplotypes)
    inserted = [str(b) for b in rng.choice(list(BASES), size=length)]
    # An insertion after the anchor could slide left iff its last base equals the anchor: make it differ.
    if inserted[-1] == text[index]:
        inserted[-1] = BASES[(BASES.index(text[index]) + 1 + int(rng.integers(3))) % 4]
    return Variant(contig, index + 1, text[index], text[index] + "".join(inserted), haplotypes)


def write_vcf(path: Path, sample: str, variants: list[Variant], lengths: dict[str, int], reference: str) -> None:
    """Write ``variants`` as a bgzipped VCF 4.2 with phased genotypes and index it with ``pysam.tabix_index``.

    The text is written directly (no date line, fixed field order), so the same truth set is the same bytes.
    """
    lines = ["##fileformat=VCFv4.2", "##source=genobatch.examples.pipeline", f"##reference={reference}"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in lengths.items()]
    lines.append('##INFO=<ID=TYPE,Number=1,Type=String,Description="snv or indel">')
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">')
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]))
    for v in variants:
        genotype = f"{v.haplotypes[0]}|{v.haplotypes[1]}"
        lines.append(f"{v.contig}\t{v.pos}\t.\t{v.ref}\t{v.alt}\t.\tPASS\tTYPE={v.kind}\tGT\t{genotype}")
    with publishing(path, ".tbi") as temporary:
        plain = temporary.with_suffix("")  # tabix_index compresses X into X.gz
        plain.write_text("\n".join(lines) + "\n")
        pysam.tabix_index(str(plain), preset="vcf", force=True)


def read_vcf(path: Path) -> list[Variant]:
    """Variants of a single-sample VCF, one per ALT allele; genotypes absent or unphased read as heterozygous."""
    variants = []
    with pysam.VariantFile(str(path)) as vcf:
        for record in vcf:
            sample = record.samples[0] if len(record.samples) else None
            alleles = tuple(sample.allele_indices) if sample is not None else (0, 1)
            for number, alt in enumerate(record.alts or (), start=1):
                if alt == "*" or alt.startswith("<"):
                    continue  # spanning deletions and symbolic alleles are not variants of their own
                haplotypes = (int(alleles[0] == number), int(len(alleles) > 1 and alleles[1] == number))
                variants.append(Variant(record.chrom, record.pos, record.ref, alt, haplotypes))
    return variants
