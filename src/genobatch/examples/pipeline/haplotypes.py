"""A diploid sample's two haplotypes: the reference with the sample's variants applied per the phased genotype."""

from __future__ import annotations

from .truth import Variant


def haplotype(sequence: bytes, variants: list[Variant], which: int) -> bytes:
    """``sequence`` with every variant whose genotype carries ALT on haplotype ``which`` (0 or 1) applied.

    Variants must be of this contig and must not overlap (the truth set guarantees it); they are applied left to
    right by splicing, so indels shift later coordinates without any bookkeeping.
    """
    pieces: list[bytes] = []
    cursor = 0  # 0-based position in ``sequence`` up to which pieces are emitted
    for variant in sorted(variants, key=lambda v: v.pos):
        if not variant.haplotypes[which]:
            continue
        start = variant.pos - 1
        if start < cursor or sequence[start : start + len(variant.ref)] != variant.ref.encode():
            raise ValueError(f"variant {variant.key} overlaps another or does not match the reference")
        pieces.append(sequence[cursor:start])
        pieces.append(variant.alt.encode())
        cursor = start + len(variant.ref)
    pieces.append(sequence[cursor:])
    return b"".join(pieces)


def diploid(genome: dict[str, bytes], variants: list[Variant]) -> dict[str, tuple[bytes, bytes]]:
    """Both haplotypes of every contig."""
    by_contig: dict[str, list[Variant]] = {name: [] for name in genome}
    for variant in variants:
        by_contig[variant.contig].append(variant)
    return {
        name: (haplotype(seq, by_contig[name], 0), haplotype(seq, by_contig[name], 1)) for name, seq in genome.items()
    }
