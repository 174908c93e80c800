"""The second level of sameness for variant calls: records equal as VCF content, not as text.

"Byte-identical after removing provenance" (:mod:`.equivalence`) and "the same calls" are different
claims; a migration's "identical variants across hardware" (seed 004's) is the second. Two callers,
or one caller on two machines, can write the same call as ``QUAL 60`` and ``60.00000``, with INFO
keys in another order, or FILTER values in another order. This module reads each VCF/BCF record
with pysam (so values are typed by the header's INFO/FORMAT definitions) and renders it canonically,
so that records equal as VCF content have equal text:

* CHROM, POS, ID, REF and ALT as written (ALT alleles keep their order: it numbers them);
* QUAL and every Float value as the shortest decimal that reads back as the same 32-bit float (VCF
  floats are 32-bit in htslib), so ``60``, ``60.0`` and ``60.00000`` are one value;
* FILTER values sorted; INFO as ``key=value`` pairs sorted by key (a Flag is its key alone);
* samples by name, each as its FORMAT fields sorted by key, GT first: ``S1[GT=0/1 AD=12,18 DP=30]``;
* a genotype's phasing kept (``0|1`` differs from ``0/1``) unless ``ignore_phase`` is given, when
  every genotype is written unphased with its alleles sorted (``1|0``, ``0|1`` and ``0/1`` are one).

Header lines are not compared at this level (the first level compares them): this level asks only
whether the records - the calls - are the same.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pysam


def _float32(value: float) -> str:
    """The shortest decimal that reads back as the same 32-bit float."""
    if not math.isfinite(value):
        return str(value)
    target = struct.pack("<f", value)
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == target:
            return text
    return repr(value)


def _value(value: Any) -> str:
    if value is None:
        return "."
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _float32(value)
    if isinstance(value, tuple | list):
        return ",".join(_value(item) for item in value)
    return str(value)


def _genotype(alleles: tuple[int | None, ...], phased: bool, ignore_phase: bool) -> str:
    if ignore_phase:
        # None (a missing allele) after the numbered ones, so ./1 and 1/. are one genotype as well.
        ordered = sorted(alleles, key=lambda a: (a is None, a or 0))
        return "/".join("." if a is None else str(a) for a in ordered)
    return ("|" if phased else "/").join("." if a is None else str(a) for a in alleles)


def canonical(record: pysam.VariantRecord, *, ignore_phase: bool = False) -> str:
    """One record as canonical text (see the module docstring): equal text means equal calls."""
    info = []
    for key, value in sorted(record.info.items()):
        info.append(key if value is True else f"{key}={_value(value)}")
    samples = []
    for name in sorted(record.samples):
        sample = record.samples[name]
        fields = []
        for key, value in sorted(sample.items(), key=lambda item: (item[0] != "GT", item[0])):
            if key == "GT":
                fields.append(f"GT={_genotype(tuple(value or ()), sample.phased, ignore_phase)}")
            else:
                fields.append(f"{key}={_value(value)}")
        samples.append(f"{name}[{' '.join(fields)}]")
    columns = [
        record.chrom,
        str(record.pos),
        record.id or ".",
        record.ref or ".",
        ",".join(record.alts or ()) or ".",
        _value(record.qual),
        ";".join(sorted(record.filter.keys())) or ".",
        ";".join(info) or ".",
        " ".join(samples),
    ]
    return "\t".join(columns)


def call_records(path: str | Path, *, ignore_phase: bool = False) -> Iterator[str]:
    """Every record of a VCF (plain, gzip, BGZF) or BCF file, canonical, in file order."""
    with pysam.VariantFile(str(path)) as variants:
        for record in variants:
            yield canonical(record, ignore_phase=ignore_phase)


def contigs(path: str | Path) -> list[str]:
    """The contigs a VCF/BCF header lists, in order (the sort order of a merged comparison)."""
    with pysam.VariantFile(str(path)) as variants:
        return list(variants.header.contigs)
