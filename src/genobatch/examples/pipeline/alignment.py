"""Read alignment: minimap2 (through ``mappy``, short-read preset) to an unsorted BAM written with pysam.

mappy returns hits, not SAM, so this module does what ``minimap2 -a`` would: soft clips, reverse-complemented
sequence and qualities on the reverse strand, pair flags (proper pair, mate strand, mate position, template
length), the NM tag samtools stats needs for its error rate, and a read group whose SM names the sample, which is
what bcftools puts in the VCF's sample column. Only each read's primary hit is written (no secondary or
supplementary records): short reads on a repeat-free genome seldom have others, and callers ignore them anyway.
"""

from __future__ import annotations

from pathlib import Path

import mappy
import pysam

from .layout import publishing

#: A pair whose ends face each other within this span is a proper pair (the library's fragments are ~350 bp).
MAX_PROPER_SPAN = 1_000
_FLAG_PAIRED, _FLAG_PROPER, _FLAG_UNMAPPED, _FLAG_MATE_UNMAPPED = 0x1, 0x2, 0x4, 0x8
_FLAG_REVERSE, _FLAG_MATE_REVERSE, _FLAG_FIRST, _FLAG_SECOND = 0x10, 0x20, 0x40, 0x80
_SOFT_CLIP = 4


def header(reference: Path, sample: str) -> pysam.AlignmentHeader:
    """A deterministic BAM header: the reference's contigs, one read group for the sample, and the aligner."""
    with pysam.FastaFile(str(reference)) as fasta:
        contigs = [{"SN": name, "LN": length} for name, length in zip(fasta.references, fasta.lengths, strict=True)]
    return pysam.AlignmentHeader.from_dict(
        {
            "HD": {"VN": "1.6", "SO": "unsorted"},
            "SQ": contigs,
            "RG": [{"ID": sample, "SM": sample, "LB": f"{sample}-lib1", "PL": "ILLUMINA"}],
            # The command line is fixed text, not this process's argv, so paths do not leak into the bytes.
            "PG": [{"ID": "minimap2", "PN": "minimap2", "VN": mappy.__version__, "CL": "mappy.Aligner(preset='sr')"}],
        }
    )


def align(reference: Path, fastqs: list[Path], output: Path, sample: str) -> dict[str, int]:
    """Align single-end (one FASTQ) or paired (two FASTQs) reads; returns read and mapped counts."""
    aligner = mappy.Aligner(str(reference), preset="sr")
    if not aligner:
        raise RuntimeError(f"minimap2 could not load or index {reference}")
    bam_header = header(reference, sample)
    counts = {"reads": 0, "mapped": 0}
    with publishing(output) as temporary, pysam.AlignmentFile(str(temporary), "wb", header=bam_header) as bam:
        readers = [pysam.FastxFile(str(path)) for path in fastqs]
        try:
            for entries in zip(*readers, strict=True):
                sequences = [entry.sequence for entry in entries]
                hits = _primary_hits(aligner, sequences)
                paired = len(entries) == 2
                for number, entry in enumerate(entries, start=1):
                    hit, mate = hits.get(number), hits.get(3 - number)  # no read 2 when single-end
                    bam.write(_record(bam_header, entry, hit, mate, number, paired, sample))
                    counts["reads"] += 1
                    counts["mapped"] += hit is not None
        finally:
            for reader in readers:
                reader.close()
    return counts


def _primary_hits(aligner: mappy.Aligner, sequences: list[str]) -> dict[int, mappy.Alignment]:
    """The first primary hit of read 1 and of read 2 (mappy numbers single-end reads 1 too)."""
    hits: dict[int, mappy.Alignment] = {}
    for hit in aligner.map(*sequences):
        number = hit.read_num if len(sequences) == 2 else 1
        if hit.is_primary and number not in hits:
            hits[number] = hit
    return hits


def _record(
    bam_header: pysam.AlignmentHeader,
    entry: pysam.FastxRecord,
    hit: mappy.Alignment | None,
    mate: mappy.Alignment | None,
    number: int,
    paired: bool,
    sample: str,
) -> pysam.AlignedSegment:
    """One SAM record for a read, given its hit and its mate's (``None`` when unmapped)."""
    record = pysam.AlignedSegment(bam_header)
    record.query_name = entry.name
    flag = (_FLAG_PAIRED | (_FLAG_FIRST if number == 1 else _FLAG_SECOND)) if paired else 0
    sequence, qualities = entry.sequence, pysam.qualitystring_to_array(entry.quality)
    if hit is None:
        flag |= _FLAG_UNMAPPED
    else:
        read_length = len(sequence)
        q_st, q_en = hit.q_st, hit.q_en
        if paired and number == 2:
            # Paired mapping reverse-complements read 2 internally, and mappy reports its query interval on that
            # reverse complement (the strand is still right): turn it back into read 2's own coordinates.
            q_st, q_en = read_length - hit.q_en, read_length - hit.q_st
        if hit.strand < 0:
            flag |= _FLAG_REVERSE
            sequence, qualities = mappy.revcomp(sequence), qualities[::-1]
            clips = (read_length - q_en, q_st)
        else:
            clips = (q_st, read_length - q_en)
        cigar = [(operation, length) for length, operation in hit.cigar]  # mappy gives (length, operation)
        left, right = [[(_SOFT_CLIP, clip)] if clip else [] for clip in clips]
        record.cigartuples = left + cigar + right
        record.reference_id = bam_header.get_tid(hit.ctg)
        record.reference_start = hit.r_st
        record.mapping_quality = hit.mapq
        # minimap2's own NM: alignment columns that are not matches (no ambiguous bases in this reference).
        record.set_tag("NM", hit.blen - hit.mlen, "i")
    record.query_sequence = sequence
    record.query_qualities = qualities  # after the sequence: setting the sequence clears qualities
    if paired:
        flag |= _mate_fields(record, bam_header, hit, mate, number)
    record.flag = flag
    record.set_tag("RG", sample, "Z")
    return record


def _mate_fields(
    record: pysam.AlignedSegment,
    bam_header: pysam.AlignmentHeader,
    hit: mappy.Alignment | None,
    mate: mappy.Alignment | None,
    number: int,
) -> int:
    """Fill RNEXT, PNEXT and TLEN (and place an unmapped read at its mate) per the SAM spec; returns pair flags."""
    flag = 0
    if mate is None:
        flag |= _FLAG_MATE_UNMAPPED
        if hit is not None:  # an unmapped mate is placed at this read, so point at it
            record.next_reference_id, record.next_reference_start = record.reference_id, record.reference_start
        return flag
    if mate.strand < 0:
        flag |= _FLAG_MATE_REVERSE
    record.next_reference_id, record.next_reference_start = bam_header.get_tid(mate.ctg), mate.r_st
    if hit is None:  # an unmapped read sits at its mapped mate's position
        record.reference_id, record.reference_start = record.next_reference_id, record.next_reference_start
        return flag
    if hit.ctg == mate.ctg:
        left, right = min(hit.r_st, mate.r_st), max(hit.r_en, mate.r_en)
        leftmost = hit.r_st < mate.r_st or (hit.r_st == mate.r_st and number == 1)
        record.template_length = (right - left) if leftmost else -(right - left)
        forward, backward = (hit, mate) if hit.strand > 0 else (mate, hit)
        facing = forward.strand > 0 > backward.strand and forward.r_st <= backward.r_en
        if facing and right - left <= MAX_PROPER_SPAN:
            flag |= _FLAG_PROPER
    return flag
