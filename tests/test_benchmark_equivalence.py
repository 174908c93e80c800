"""Equivalence of outputs across targets: normalisation rules, digests and the streaming diff."""

from __future__ import annotations

import gzip
from pathlib import Path

import pysam
import pytest

from genobatch.benchmark.equivalence import (
    DEFAULT_IGNORE,
    compare,
    diff_records,
    digest,
    merged_records,
    normalise_records,
    output_files,
    sniff,
)

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

HEADER = """##fileformat=VCFv4.2
##fileDate={date}
##source=bcftools
##bcftoolsVersion={version}
##bcftoolsCommand=mpileup -f ref.fa {bam}
##contig=<ID=chr1,length=10000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""
RECORDS = [
    "chr1\t100\t.\tA\tG\t50\tPASS\tDP=30\tGT\t0/1",
    "chr1\t250\t.\tC\tT\t60\tPASS\tDP=31\tGT\t1/1",
    "chr1\t400\t.\tG\tA\t45\tPASS\tDP=29\tGT\t0/1",
]


def write_vcf(path: Path, date: str = "20240101", version: str = "1.19", records: list[str] | None = None) -> Path:
    text = HEADER.format(date=date, version=version, bam=f"/runs/{date}/sample.bam")
    text += "".join(line + "\n" for line in (RECORDS if records is None else records))
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=int(date)))
    else:
        path.write_text(text)
    return path


def write_bam(path: Path, program: dict[str, str], reads: int = 4, changed: int | None = None) -> Path:
    header = pysam.AlignmentHeader.from_dict(
        {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": 10000}], "PG": [program]}
    )
    with pysam.AlignmentFile(str(path), "wb", header=header) as bam:
        for index in range(reads):
            read = pysam.AlignedSegment(header)
            read.query_name = f"read{index}"
            read.query_sequence = "ACGTACGTAC" if index != changed else "ACGTTCGTAC"
            read.flag = 0
            read.reference_id = 0
            read.reference_start = 100 + 10 * index
            read.mapping_quality = 60
            read.cigarstring = "10M"
            read.query_qualities = pysam.qualitystring_to_array("IIIIIIIIII")
            bam.write(read)
    return path


def test_vcf_header_noise_is_ignored(tmp_path: Path) -> None:
    a = write_vcf(tmp_path / "a.vcf", date="20240101", version="1.19")
    b = write_vcf(tmp_path / "b.vcf", date="20250612", version="1.21")
    assert a.read_text() != b.read_text()
    assert digest(a) == digest(b)
    records = list(normalise_records(a))
    assert records[0] == "##fileformat=VCFv4.2"
    assert not any(r.startswith(("##fileDate", "##source", "##bcftoolsVersion", "##bcftoolsCommand")) for r in records)
    assert records[-4].startswith("#CHROM") and records[-3:] == RECORDS
    # With no ignore patterns the header noise counts.
    assert digest(a, ignore=[]) != digest(b, ignore=[])


def test_identical_vcfs_compare_identical(tmp_path: Path) -> None:
    a = write_vcf(tmp_path / "a.vcf", date="20240101")
    b = write_vcf(tmp_path / "b.vcf", date="20250612", version="1.21")
    [result] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": b}}, "f1", "bcftools")
    assert result.identical and result.differences == []
    assert result.tool == "bcftools" and result.output == "calls.vcf" and result.reference_target == "f1"
    assert result.digests == {"f1": digest(a), "f2": digest(b)}


def test_changed_genotype_is_one_differing_record(tmp_path: Path) -> None:
    a = write_vcf(tmp_path / "a.vcf")
    changed = [RECORDS[0], RECORDS[1].replace("1/1", "0/1"), RECORDS[2]]
    b = write_vcf(tmp_path / "b.vcf", date="20250612", records=changed)
    [result] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": b}}, "f1", "bcftools")
    assert not result.identical
    [difference] = result.differences
    assert difference.target == "f2"
    assert (difference.differing_records, difference.only_in_reference, difference.only_in_target) == (1, 0, 0)
    assert difference.first == [(RECORDS[1], changed[1])]


def test_bgzip_vcf_and_bcf_are_read_as_variants(tmp_path: Path) -> None:
    plain = write_vcf(tmp_path / "a.vcf")
    bgzipped = tmp_path / "a.vcf.gz"
    pysam.tabix_compress(str(plain), str(bgzipped))
    assert sniff(bgzipped) == "vcf"
    assert list(normalise_records(bgzipped)) == list(normalise_records(plain))
    bcf = tmp_path / "a.bcf"
    with pysam.VariantFile(str(plain)) as source, pysam.VariantFile(str(bcf), "wb", header=source.header) as sink:
        for record in source:
            sink.write(record)
    assert sniff(bcf) == "bcf"
    records = list(normalise_records(bcf))
    assert records[-3:] == RECORDS and not any(r.startswith("##fileDate") for r in records)


def test_bam_identical_apart_from_pg(tmp_path: Path) -> None:
    a = write_bam(tmp_path / "a.bam", {"ID": "minimap2", "PN": "minimap2", "VN": "2.26", "CL": "minimap2 -a x"})
    b = write_bam(tmp_path / "b.bam", {"ID": "minimap2", "PN": "minimap2", "VN": "2.28", "CL": "minimap2 -a -t 8 x"})
    assert sniff(a) == "alignments"
    records = list(normalise_records(a))
    assert records[:2] == ["@HD\tVN:1.6\tSO:coordinate", "@SQ\tSN:chr1\tLN:10000"]
    assert not any(r.startswith("@PG") for r in records) and len(records) == 2 + 4
    assert records[2].startswith("read0\t0\tchr1\t101\t60\t10M")
    [result] = compare({"cpu": {"aln.bam": a}, "gpu": {"aln.bam": b}}, "cpu", "minimap2")
    assert result.identical
    # @PG is dropped by a default pattern, so a plan that turns the defaults off keeps it.
    assert digest(a, ignore=[]) != digest(b, ignore=[])


def test_bam_with_a_changed_read_differs(tmp_path: Path) -> None:
    program = {"ID": "x", "PN": "x"}
    a = write_bam(tmp_path / "a.bam", program)
    b = write_bam(tmp_path / "b.bam", program, changed=2)
    [result] = compare({"cpu": {"aln.bam": a}, "gpu": {"aln.bam": b}}, "cpu", "x")
    [difference] = result.differences
    assert difference.differing_records == 1 and difference.only_in_reference == difference.only_in_target == 0
    [(ours, theirs)] = difference.first
    assert ours.startswith("read2\t") and "ACGTACGTAC" in ours and "ACGTTCGTAC" in theirs


def test_sam_text_drops_pg(tmp_path: Path) -> None:
    sam = tmp_path / "a.sam"
    sam.write_text("@HD\tVN:1.6\n@PG\tID:bwa\tCL:bwa mem\nr1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\n")
    assert sniff(sam) == "sam"
    assert list(normalise_records(sam)) == ["@HD\tVN:1.6", "r1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII"]


def test_samtools_stats_from_different_paths_are_identical(tmp_path: Path) -> None:
    program = {"ID": "x", "PN": "x"}
    outputs = {}
    for target in ("cpu", "gpu"):
        (tmp_path / target).mkdir()
        bam = write_bam(tmp_path / target / "sample.bam", program)
        stats = tmp_path / target / "stats.txt"
        stats.write_text(pysam.stats(str(bam)))
        outputs[target] = {"stats.txt": stats}
    assert "# The command line was:" in outputs["cpu"]["stats.txt"].read_text()
    [result] = compare(outputs, "cpu", "samtools")
    assert result.identical


def test_missing_output_is_a_difference(tmp_path: Path) -> None:
    a = write_vcf(tmp_path / "a.vcf")
    stats = tmp_path / "stats.txt"
    stats.write_text("reads 10\n")
    outputs = {"f1": {"calls.vcf": a, "stats.txt": stats}, "f2": {"calls.vcf": a}}
    calls, missing = compare(outputs, "f1", "tool")
    assert calls.identical and calls.output == "calls.vcf"
    assert missing.output == "stats.txt" and not missing.identical
    assert set(missing.digests) == {"f1"}  # absent on f2
    [difference] = missing.differences
    assert (difference.target, difference.only_in_reference, difference.only_in_target) == ("f2", 1, 0)
    assert difference.first == [("reads 10", "")]
    # Missing on the reference target: the other target's records are only in the target.
    [reverse] = compare({"f2": outputs["f2"], "f1": outputs["f1"]}, "f2", "tool")[1].differences
    assert (reverse.target, reverse.only_in_reference, reverse.only_in_target) == ("f1", 0, 1)


def test_missing_reference_target_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reference target"):
        compare({"a": {}}, "b", "tool")


def test_gzip_text_is_compared_decompressed(tmp_path: Path) -> None:
    content = b"metric\tvalue\nreads\t1000\nbases\t150000\n"
    # Different gzip header timestamps and levels: the bytes differ, the content does not.
    a = tmp_path / "a.tsv.gz"
    b = tmp_path / "b.tsv.gz"
    a.write_bytes(gzip.compress(content, mtime=1))
    b.write_bytes(gzip.compress(content, compresslevel=1, mtime=2))
    assert a.read_bytes() != b.read_bytes()
    assert list(normalise_records(a)) == ["metric\tvalue", "reads\t1000", "bases\t150000"]
    c = tmp_path / "c.tsv.gz"
    c.write_bytes(gzip.compress(content.replace(b"150000", b"150001")))
    same, different = (compare({"x": {"m": a}, "y": {"m": other}}, "x", "t")[0] for other in (b, c))
    assert same.identical and not different.identical
    assert different.differences[0].first == [("bases\t150000", "bases\t150001")]


def test_indexes_are_skipped_and_binary_is_chunked(tmp_path: Path) -> None:
    blob_a, blob_b = tmp_path / "a.bin", tmp_path / "b.bin"
    blob_a.write_bytes(b"\x00\x01" * 10)
    blob_b.write_bytes(b"\x00\x02" * 10)
    index = tmp_path / "a.bam.bai"
    index.write_bytes(b"BAI\x01")
    assert sniff(blob_a) == "binary"
    [record] = normalise_records(blob_a)
    assert record.startswith("bytes 0-20 sha256:")
    outputs = {"x": {"m.bin": blob_a, "a.bam.bai": index}, "y": {"m.bin": blob_b}}
    [result] = compare(outputs, "x", "t")
    assert result.output == "m.bin" and result.differences[0].differing_records == 1
    assert [r.output for r in compare(outputs, "x", "t", include_indexes=True)] == ["a.bam.bai", "m.bin"]


def test_unreadable_output_is_reported_not_raised(tmp_path: Path) -> None:
    good = write_bam(tmp_path / "a.bam", {"ID": "x", "PN": "x"})
    truncated = tmp_path / "b.bam"
    truncated.write_bytes(good.read_bytes()[:60])
    [result] = compare({"x": {"o.bam": good}, "y": {"o.bam": truncated}}, "x", "t")
    assert not result.identical
    assert any("unreadable" in theirs for _, theirs in result.differences[0].first)


def test_custom_ignore_replaces_the_defaults(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("# run at 2024-01-01\nvalue 1\n")
    b.write_text("# run at 2025-02-02\nvalue 1\n")
    assert digest(a) != digest(b)
    assert digest(a, ignore=[*DEFAULT_IGNORE, r"^# run at "]) == digest(b, ignore=[r"^# run at "])


def test_diff_resynchronises_after_insertions_and_deletions() -> None:
    ours = [f"r{i}" for i in range(20_000)]
    theirs = ours[:100] + ["new1", "new2"] + ours[100:700] + ours[705:1500] + ["r1500x"] + ours[1501:]
    differing, only_ours, only_theirs, first = diff_records(iter(ours), iter(theirs))
    assert (differing, only_ours, only_theirs) == (1, 5, 2)
    assert first == [("", "new1"), ("", "new2"), ("r700", ""), ("r701", ""), ("r702", "")]
    assert diff_records(iter(ours), iter(ours)) == (0, 0, 0, [])
    # A deletion far longer than any window a line-diff would use is still only a deletion.
    assert diff_records(iter(ours), iter(ours[:100] + ours[10_000:]))[:3] == (0, 9_900, 0)
    # Swapped records: one removed and one added, as the digest also says they differ.
    assert diff_records(iter(["a", "p", "q", "z"]), iter(["a", "q", "p", "z"]))[:3] == (0, 1, 1)
    # Nothing in common within the lookahead: paired off as differing, totals still right.
    assert diff_records(iter(["a"] * 5), iter(["b"] * 7), lookahead=3)[:3] == (5, 0, 2)
    # One stream ends early: the other's rest is only in it.
    assert diff_records(iter(ours[:10]), iter(ours[:7]))[:3] == (0, 3, 0)


def test_output_files_lists_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("x")
    (tmp_path / "y.txt").write_text("y")
    assert output_files(tmp_path) == {"sub/x.txt": tmp_path / "sub" / "x.txt", "y.txt": tmp_path / "y.txt"}


# ---------------------------------------------------------------- provenance lines only (issue 10)

DEFINITIONS = """##fileformat=VCFv4.2
##fileDate=20240101
##source=bcftools
##bcftools_callVersion=1.19+htslib-1.19
##bcftools_callCommand=call -mv -Oz -o /runs/a/calls.vcf.gz
##GATKCommandLine=<ID=HaplotypeCaller,CommandLine="HaplotypeCaller -I /runs/a/x.bam">
##DeepVariant_version=1.6.0
##commandline="freebayes -f ref.fa /runs/a/x.bam"
##contig=<ID=chr1,length=10000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth (model version 2)">
##FILTER=<ID=LowQual,Description="QUAL below the --min-qual command-line threshold">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
chr1\t100\t.\tA\tG\t50\tPASS\tDP=30\tGT\t0/1
"""


def test_default_ignore_drops_provenance_lines_only(tmp_path: Path) -> None:
    a = tmp_path / "a.vcf"
    a.write_text(DEFINITIONS)
    kept = list(normalise_records(a))
    # Date, program, versions and command lines of bcftools, GATK, DeepVariant and FreeBayes: dropped.
    assert not any(
        r.startswith(("##fileDate", "##source", "##bcftools_", "##GATK", "##DeepVariant", "##command")) for r in kept
    )
    # Definitions that merely mention "version" or "command" in their description: kept.
    assert any(r.startswith("##INFO=<ID=DP") for r in kept) and any(r.startswith("##FILTER=<ID=LowQual") for r in kept)
    # A changed FILTER (or INFO) description is a difference, not provenance.
    b = tmp_path / "b.vcf"
    b.write_text(DEFINITIONS.replace("below the --min-qual command-line threshold", "below 20 (command-line)"))
    [result] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": b}}, "f1", "bcftools")
    assert not result.identical
    [difference] = result.differences
    assert difference.differing_records == 1 and difference.first[0][1].startswith("##FILTER=<ID=LowQual")
    c = tmp_path / "c.vcf"
    c.write_text(DEFINITIONS.replace("(model version 2)", "(model version 3)"))
    assert digest(a) != digest(c)
    # The @PG rule is still there for SAM text; and ignore stays configurable.
    assert digest(a, ignore=[*DEFAULT_IGNORE, r"^##FILTER="]) == digest(b, ignore=[*DEFAULT_IGNORE, r"^##FILTER="])


# ---------------------------------------------------------------- two levels of sameness (issue 10)

CALL_HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=10000>
##contig=<ID=chr2,length=10000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">
##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Sample depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def write_calls(path: Path, records: list[str]) -> Path:
    path.write_text(CALL_HEADER + "".join(r + "\n" for r in records))
    return path


def test_identical_records_and_same_calls_are_reported_separately(tmp_path: Path) -> None:
    ours = [
        "chr1\t100\t.\tA\tG\t60\tPASS\tDP=30;AF=0.5;DB\tGT:GQ:DP\t0/1:99:30",
        "chr1\t200\t.\tC\tT\t45.5\tPASS\tDP=20;AF=1\tGT:GQ\t1/1:80",
        "chr1\t300\t.\tG\tA\t30\tPASS\tDP=25;AF=0.5\tGT:GQ\t0/1:70",
        "chr2\t400\t.\tT\tC\t50\tPASS\tDP=31;AF=0.5\tGT:GQ\t0/1:90",
    ]
    theirs = [
        "chr1\t100\t.\tA\tG\t60.00000\tPASS\tDB;AF=0.50;DP=30\tGT:DP:GQ\t0/1:30:99",  # same call, other text
        "chr1\t200\t.\tC\tT\t45.50\tPASS\tAF=1.0;DP=20\tGT:GQ\t1/1:80",  # same call, other text
        "chr1\t300\t.\tG\tA\t30\tPASS\tDP=25;AF=0.5\tGT:GQ\t0|1:70",  # phased: same only if configured
        "chr2\t400\t.\tT\tC\t50\tPASS\tDP=32;AF=0.5\tGT:GQ\t0/1:90",  # a different call
    ]
    a, b = write_calls(tmp_path / "a.vcf", ours), write_calls(tmp_path / "b.vcf", theirs)
    [result] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": b}}, "f1", "gatk")
    # First level: four records differ as text.
    assert not result.identical and result.records == {"f1": 10 + 4, "f2": 10 + 4}
    [text] = result.differences
    assert (text.differing_records, text.only_in_reference, text.only_in_target) == (4, 0, 0)
    assert text.first[0] == (ours[0], theirs[0])
    # Second level: two calls differ (the phased genotype and the depth), each shown canonically.
    calls = result.calls
    assert calls is not None and not calls.same and not calls.phase_ignored
    assert calls.records == {"f1": 4, "f2": 4}
    [call] = calls.differences
    assert (call.differing_records, call.only_in_reference, call.only_in_target) == (2, 0, 0)
    (phase_ours, phase_theirs), (depth_ours, depth_theirs) = call.first
    assert phase_ours.startswith("chr1\t300\t") and "GT=0/1" in phase_ours and "GT=0|1" in phase_theirs
    assert "DP=31" in depth_ours and "DP=32" in depth_theirs
    # With phasing ignored, only the depth differs.
    [relaxed] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": b}}, "f1", "gatk", ignore_phase=True)
    assert relaxed.calls.phase_ignored and relaxed.calls.differences[0].differing_records == 1
    # Text that differs only in formatting: not identical records, yet the same calls.
    c = write_calls(tmp_path / "c.vcf", theirs[:2] + ours[2:])
    [formatting] = compare({"f1": {"calls.vcf": a}, "f2": {"calls.vcf": c}}, "f1", "gatk")
    assert not formatting.identical and formatting.calls.same and formatting.calls.differences == []
    # Outputs that are not variant calls have no second level.
    stats = tmp_path / "stats.txt"
    stats.write_text("reads 10\n")
    [other] = compare({"f1": {"stats.txt": stats}, "f2": {"stats.txt": stats}}, "f1", "gatk")
    assert other.identical and other.calls is None


def test_calls_of_bcf_and_bgzf_vcf_match_the_plain_vcf(tmp_path: Path) -> None:
    plain = write_calls(tmp_path / "a.vcf", ["chr1\t100\t.\tA\tG\t60\tPASS\tDP=30;AF=0.5\tGT:GQ\t0/1:99"])
    bgzipped = tmp_path / "a.vcf.gz"
    pysam.tabix_compress(str(plain), str(bgzipped))
    bcf = tmp_path / "a.bcf"
    with pysam.VariantFile(str(plain)) as source, pysam.VariantFile(str(bcf), "wb", header=source.header) as sink:
        for record in source:
            sink.write(record)
    [result] = compare({"x": {"o": plain}, "y": {"o": bgzipped}, "z": {"o": bcf}}, "x", "t")
    assert result.calls.same and set(result.calls.records.values()) == {1}


# ---------------------------------------------------------------- several shards' files merged (issue 10)


def test_merged_shards_compare_the_union_of_records(tmp_path: Path) -> None:
    records = [
        "chr1\t100\t.\tA\tG\t60\tPASS\tDP=30\tGT:GQ\t0/1:99",
        "chr1\t200\t.\tC\tT\t45\tPASS\tDP=20\tGT:GQ\t1/1:80",
        "chr2\t50\t.\tG\tA\t30\tPASS\tDP=25\tGT:GQ\t0/1:70",
        "chr2\t400\t.\tT\tC\t50\tPASS\tDP=31\tGT:GQ\t0/1:90",
    ]
    one = write_calls(tmp_path / "one.vcf", records)
    # Two shards that split the same records otherwise (each sorted within itself).
    s0 = write_calls(tmp_path / "s0.vcf", [records[0], records[3]])
    s1 = write_calls(tmp_path / "s1.vcf", [records[1], records[2]])
    [result] = compare({"one": {"calls.vcf": one}, "two": {"calls.vcf": [s0, s1]}}, "one", "t")
    assert result.identical and result.calls.same, result.differences
    assert result.records == {"one": 10 + 4, "two": 10 + 4}  # header lines once, every record
    assert result.comparison.startswith("every shard's file merged") and "one: 1, two: 2" in result.comparison
    assert list(merged_records([s1, s0]))[-4:] == records  # ordered by contig, then position
    # A changed record in one shard is found, at both levels.
    s1_changed = write_calls(tmp_path / "s1x.vcf", [records[1], records[2].replace("DP=25", "DP=26")])
    [changed] = compare({"one": {"calls.vcf": one}, "two": {"calls.vcf": [s0, s1_changed]}}, "one", "t")
    assert not changed.identical and not changed.calls.same
    assert changed.differences[0].first == [(records[2], records[2].replace("DP=25", "DP=26"))]
    assert changed.calls.differences[0].differing_records == 1
    # An unsorted shard is still merged correctly (sorted in memory).
    unsorted = write_calls(tmp_path / "u.vcf", [records[3], records[0]])
    assert compare({"one": {"c": one}, "two": {"c": [unsorted, s1]}}, "one", "t")[0].identical


def test_merged_bams_compare_the_union_of_reads(tmp_path: Path) -> None:
    program = {"ID": "x", "PN": "x"}
    whole = write_bam(tmp_path / "whole.bam", program, reads=4)
    # Reads 0 and 2 in one shard, 1 and 3 in the other: other @PG lines, same reads.
    parts = []
    with pysam.AlignmentFile(str(whole)) as source:
        reads = list(source)
        for index, picked in enumerate((reads[0::2], reads[1::2])):
            path = tmp_path / f"part{index}.bam"
            header = source.header.to_dict() | {"PG": [{"ID": "x", "PN": "x", "CL": f"x --shard {index}"}]}
            with pysam.AlignmentFile(str(path), "wb", header=header) as sink:
                for read in picked:
                    sink.write(read)
            parts.append(path)
    [result] = compare({"a": {"aln.bam": whole}, "b": {"aln.bam": parts}}, "a", "x")
    assert result.identical and result.calls is None and result.records == {"a": 2 + 4, "b": 2 + 4}


def test_merged_fastq_keeps_each_read_whole(tmp_path: Path) -> None:
    reads = {"r1": ("ACGT", "IIII"), "r2": ("TTGA", "#I#I"), "r3": ("GGCC", "II##")}

    def fastq(path: Path, names: list[str], swap: bool = False) -> Path:
        lines = []
        for name in names:
            sequence, quality = reads[name]
            if swap and name == "r2":
                quality = reads["r3"][1]
            if swap and name == "r3":
                quality = reads["r2"][1]
            lines += [f"@{name}", sequence, "+", quality]
        path.write_text("\n".join(lines) + "\n")
        return path

    one = fastq(tmp_path / "one.fastq", ["r1", "r2", "r3"])
    split = [fastq(tmp_path / "a.fastq", ["r3"]), fastq(tmp_path / "b.fastq", ["r2", "r1"])]
    [same] = compare({"x": {"reads.fastq": one}, "y": {"reads.fastq": split}}, "x", "basecaller")
    assert same.identical and same.records == {"x": 3, "y": 3}
    # Two reads' qualities swapped: every line is still there, but two reads differ.
    swapped = [fastq(tmp_path / "c.fastq", ["r3"], swap=True), fastq(tmp_path / "d.fastq", ["r2", "r1"], swap=True)]
    [different] = compare({"x": {"reads.fastq": one}, "y": {"reads.fastq": swapped}}, "x", "basecaller")
    assert not different.identical and different.differences[0].differing_records == 2
    assert different.differences[0].first[0] == ("@r2\nTTGA\n+\n#I#I", "@r2\nTTGA\n+\nII##")
