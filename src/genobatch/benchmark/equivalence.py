"""Equivalence: is a tool's output the same on every target, once run-specific noise is removed?

The check the DRAGEN F1 → F2 migration relied on (seed 004): identical variants and metrics across
hardware, "minus the stuff in the header that depends on date". Each output file is turned into a
stream of normalised text records, hashed (:func:`digest`), and where two targets' digests differ the
two record streams are diffed to say how (:func:`compare`).

Normalisation, by content (sniffed from the bytes, so a misnamed file is still read correctly):

* VCF (plain, gzip or BGZF): ``##`` header lines matching an ignore pattern are dropped; the ``#CHROM``
  line and every record are kept verbatim. BCF is decoded with pysam and treated the same way.
* BAM and CRAM (pysam): header lines minus those matching an ignore pattern (by default every ``@PG``
  line: program version and command line differ between installs and output paths, never the data);
  then each record's SAM text as htslib writes it. SAM text: the same rules applied to its lines.
* Other text, compressed (gzip/BGZF, bzip2, xz) or not: the decompressed lines, minus lines matching an
  ignore pattern.
* Anything else is binary: one record per MiB of (decompressed) content, naming the byte range and its
  sha256, so a binary difference is located but cannot be shown.
* Index files (``.bai``, ``.csi``, ``.tbi``, ``.crai``) are skipped by :func:`compare`: they follow from
  the data file they index, which is compared itself, and their bytes can legitimately differ with the
  indexer's version.

Ignore patterns are Python regular expressions searched in each header line (VCF ``##`` lines, SAM
``@`` lines) or, for other text, in every line. ``ignore=None`` means :data:`DEFAULT_IGNORE`, which
matches provenance lines only (date, source, a tool's version and command line, ``@PG``); a list
given replaces the defaults (pass ``[*DEFAULT_IGNORE, ...]`` to extend them). VCF and SAM records are
never dropped, so a careless pattern cannot hide a difference in the calls themselves.

That is the first level of sameness, identical records. :func:`compare` also reports the second for
VCF/BCF outputs, the same calls (records equal as VCF content, :mod:`.calls`). It compares file with
file, or - when a target has one file of a name per shard and the targets' shards split the data set
differently - the union of every shard's records (:func:`merged_records`); :mod:`.analysis` decides
which files are paired.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import lzma
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import pysam

from genobatch.benchmark import calls
from genobatch.benchmark.merging import Opener, contig_ranks, merge_sorted, record_key
from genobatch.benchmark.results import CallsComparison, Difference, EquivalenceResult

#: Provenance header lines, and only those: the date, the producing program, its version and its
#: command line. The VCF patterns match the line's *key* (the text before the first ``=``), never its
#: value, so an ``##INFO``/``##FILTER``/``##FORMAT`` definition whose description mentions a version or
#: a command is kept and compared: ``##bcftools_callVersion=``, ``##GATKCommandLine=``,
#: ``##DeepVariant_version=``, ``##commandline=`` (FreeBayes) match; ``##INFO=<...,Description="...
#: version ...">`` does not. ``@PG`` (SAM) is a pattern rather than a fixed rule so that a plan turning
#: the defaults off keeps it; the tab makes it SAM-specific, so a FASTQ read named ``@PG...`` is never
#: dropped. The last two are samtools stats' comment lines: its version, and its command line with the
#: input's path, which differs per target.
DEFAULT_IGNORE: tuple[str, ...] = (
    r"^##fileDate=",
    r"^##source=",
    r"^##[\w.-]*[Vv]ersion=",
    r"^##[\w.-]*[Cc]ommand[\w.-]*=",
    r"^@PG\t",
    r"^# This file was produced by ",
    r"^# The command line was: ",
)
#: Files that are derived from another output and so are not compared themselves.
INDEX_SUFFIXES: tuple[str, ...] = (".bai", ".csi", ".tbi", ".crai")
#: Records per side the diff reads ahead to re-synchronise after a difference; bounds its memory.
LOOKAHEAD = 100_000
#: Differing record pairs kept per target for the report.
EXAMPLES = 5
#: Characters of a record kept in an example (BAM records with long reads run to many kilobytes).
EXAMPLE_CHARS = 400
#: Bytes per record of a binary file.
CHUNK = 1 << 20
#: Bytes read to decide what a file holds.
SNIFF = 64 * 1024

Kind = Literal["index", "vcf", "bcf", "alignments", "sam", "text", "binary"]


def is_index(name: str) -> bool:
    """Whether a file name is an index, which :func:`compare` skips."""
    return name.lower().endswith(INDEX_SUFFIXES)


def output_files(directory: str | Path) -> dict[str, Path]:
    """Every file under ``directory``, keyed by its POSIX path relative to it: one target's outputs."""
    root = Path(directory)
    return {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*")) if path.is_file()}


def _open_decompressed(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its magic number says gzip (BGZF included), bzip2 or xz."""
    with path.open("rb") as raw:
        magic = raw.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")  # reads every member, so BGZF's many blocks come out as one stream
    if magic.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return path.open("rb")


def _is_utf8(data: bytes) -> bool:
    # Incremental, so a multi-byte character cut at the end of the sniffed block is not an error.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def sniff(path: str | Path) -> Kind:
    """What a file holds, from its name (indexes, SAM) and its first bytes (everything else)."""
    path = Path(path)
    name = path.name.lower()
    if is_index(name):
        return "index"
    with path.open("rb") as raw:
        if raw.read(4) == b"CRAM":
            return "alignments"
    try:
        with _open_decompressed(path) as stream:
            start = stream.read(SNIFF)
    except (OSError, EOFError):  # a corrupt compressed stream: only its bytes can be compared
        return "binary"
    if start.startswith(b"BAM\x01"):
        return "alignments"
    if start.startswith(b"BCF\x02"):
        return "bcf"
    if b"\x00" in start or not _is_utf8(start):
        return "binary"
    if start.startswith(b"##fileformat=VCF"):
        return "vcf"
    base = name.removesuffix(".gz").removesuffix(".bgz")
    if base.endswith(".sam") or start.startswith((b"@HD\t", b"@SQ\t", b"@RG\t", b"@PG\t", b"@CO\t")):
        return "sam"
    return "text"


def _patterns(ignore: Sequence[str] | None) -> list[re.Pattern[str]]:
    return [re.compile(p) for p in (DEFAULT_IGNORE if ignore is None else ignore)]


def _ignored(line: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(p.search(line) for p in patterns)


def _lines(path: Path) -> Iterator[str]:
    """Decompressed lines without their ``\\n``; undecodable bytes kept (surrogateescape) so hashing is lossless."""
    with _open_decompressed(path) as stream:
        for line in stream:
            yield line.removesuffix(b"\n").decode("utf-8", "surrogateescape")


def _vcf_text(path: Path, patterns: list[re.Pattern[str]]) -> Iterator[str]:
    for line in _lines(path):
        if not (line.startswith("##") and _ignored(line, patterns)):
            yield line


def _bcf(path: Path, patterns: list[re.Pattern[str]]) -> Iterator[str]:
    with pysam.VariantFile(str(path)) as variants:
        for line in str(variants.header).splitlines():
            if not (line.startswith("##") and _ignored(line, patterns)):
                yield line
        for record in variants:
            yield str(record).removesuffix("\n")


def _alignments(path: Path, patterns: list[re.Pattern[str]], reference: Path | None) -> Iterator[str]:
    # check_sq=False: unaligned BAMs (basecaller output) have no @SQ lines and are still valid.
    options = {"reference_filename": str(reference)} if reference else {}
    with pysam.AlignmentFile(str(path), check_sq=False, **options) as alignments:
        for line in str(alignments.header).splitlines():
            if not _ignored(line, patterns):
                yield line
        for record in alignments:  # iterating the file, not fetch(): unmapped reads included, no index needed
            yield record.to_string()


def _sam_text(path: Path, patterns: list[re.Pattern[str]]) -> Iterator[str]:
    # Only header lines (``@``) are filtered; alignment records always count.
    for line in _lines(path):
        if not (line.startswith("@") and _ignored(line, patterns)):
            yield line


def _text(path: Path, patterns: list[re.Pattern[str]]) -> Iterator[str]:
    for line in _lines(path):
        if not _ignored(line, patterns):
            yield line


def _chunks(path: Path) -> Iterator[str]:
    # Decompressed: a gzip member header carries a timestamp, which is exactly the noise to leave out.
    with _open_decompressed(path) as stream:
        offset = 0
        while chunk := stream.read(CHUNK):
            yield f"bytes {offset}-{offset + len(chunk)} sha256:{hashlib.sha256(chunk).hexdigest()}"
            offset += len(chunk)


def normalise_records(
    path: str | Path, ignore: Sequence[str] | None = None, *, reference: str | Path | None = None
) -> Iterator[str]:
    """The file's records as text lines after normalisation (see the module docstring for the rules).

    ``reference`` is the FASTA a CRAM file was compressed against, passed to htslib; without it htslib
    looks the reference up by its checksum (``REF_PATH``/``REF_CACHE``). Reading errors propagate.
    """
    path = Path(path)
    patterns = _patterns(ignore)
    match sniff(path):
        case "vcf":
            yield from _vcf_text(path, patterns)
        case "bcf":
            yield from _bcf(path, patterns)
        case "alignments":
            yield from _alignments(path, patterns, Path(reference) if reference else None)
        case "sam":
            yield from _sam_text(path, patterns)
        case "text":
            yield from _text(path, patterns)
        case "binary" | "index":
            yield from _chunks(path)


def _hash(records: Iterable[str]) -> str:
    return _hash_counted(records)[0]


def _hash_counted(records: Iterable[str]) -> tuple[str, int]:
    """The digest of :func:`digest` and the number of records hashed."""
    sha = hashlib.sha256()
    count = 0
    for record in records:
        sha.update(record.encode("utf-8", "surrogateescape"))
        sha.update(b"\n")
        count += 1
    return sha.hexdigest(), count


def digest(path: str | Path, ignore: Sequence[str] | None = None, *, reference: str | Path | None = None) -> str:
    """Hex sha256 of the normalised records, each followed by ``\\n``: equal digests mean equivalent files."""
    return _hash(normalise_records(path, ignore, reference=reference))


def _tolerant(open_records: Opener) -> Iterator[str]:
    """Records of a file that may be unreadable, for :func:`compare`.

    An unreadable output (a truncated BAM, a corrupt gzip) on one target is a finding to report, not a
    reason to abandon the comparison, so the failure becomes a final record that differs from anything
    a readable file yields.
    """
    count = 0
    try:
        for record in open_records():
            count += 1
            yield record
    except Exception as error:  # any reading failure (pysam, gzip, zlib, OS) is reported as a difference
        yield f"<unreadable after {count} records: {type(error).__name__}: {error}>"


#: What starts a header line, for the kinds that have one (see :func:`sniff`).
_HEADER_PREFIX = {"vcf": "#", "bcf": "#", "sam": "@", "alignments": "@"}


def merged_records(
    paths: Sequence[Path], ignore: Sequence[str] | None = None, *, reference: str | Path | None = None
) -> Iterator[str]:
    """Several shards' files of one output as one: header lines once each, then every record, sorted.

    The normalised records (:func:`normalise_records`) of every file, the kind read from the first.
    Header lines are kept once, in first-seen order; the other records are ordered by
    :func:`.merging.record_key` (VCF and SAM records by contig in header order and position, other text
    and binary chunks by their text; a FASTQ read's four lines stay together as one record), so the
    result depends on the records, not on how the data set was split into shards. See
    :mod:`.merging` for memory.
    """
    kind = sniff(paths[0])
    prefix = _HEADER_PREFIX.get(kind)

    def normalised(path: Path) -> Iterator[str]:
        return _tolerant(lambda: normalise_records(path, ignore, reference=reference))

    header: dict[str, None] = {}  # an ordered set: every shard repeats the header
    for path in paths if prefix else ():
        for record in normalised(path):
            if not record.startswith(prefix or "#"):
                break
            header.setdefault(record)
    yield from header

    # FASTQ is text whose records are four lines: sorting lines one by one would let a quality string
    # move to another read unnoticed, so each read is kept together as one record.
    group = 4 if kind == "text" and _looks_like_fastq(normalised(paths[0])) else 1

    def body(path: Path) -> Opener:
        # A SAM QNAME cannot start with "@" and a VCF record never starts with "#": this drops headers only.
        return lambda: _grouped(
            (record for record in normalised(path) if not (prefix and record.startswith(prefix))), group
        )

    yield from merge_sorted([body(path) for path in paths], record_key(kind, contig_ranks(header)))


def _looks_like_fastq(records: Iterator[str]) -> bool:
    first = [record for _, record in zip(range(4), records, strict=False)]
    return len(first) == 4 and first[0].startswith("@") and first[2].startswith("+")


def _grouped(records: Iterator[str], size: int) -> Iterator[str]:
    """Every ``size`` records joined by newlines as one (the last group may be shorter)."""
    if size == 1:
        yield from records
        return
    while chunk := [record for _, record in zip(range(size), records, strict=False)]:
        yield "\n".join(chunk)


def _merged_calls(paths: Sequence[Path], ignore_phase: bool) -> Iterator[str]:
    """The canonical calls (:mod:`.calls`) of several shards' VCF/BCF files, sorted as :func:`merged_records`."""
    names: list[str] = []
    for path in paths:
        try:
            names += calls.contigs(path)
        except Exception:  # an unreadable file's records are reported by _tolerant below
            continue
    openers: list[Opener] = [
        lambda path=path: _tolerant(lambda: calls.call_records(path, ignore_phase=ignore_phase)) for path in paths
    ]
    yield from merge_sorted(openers, record_key("calls", contig_ranks(f"##contig=<ID={n}>" for n in names)))


def _shown(record: str) -> str:
    """A record fit for a report: valid UTF-8 (stray bytes replaced) and at most EXAMPLE_CHARS long."""
    text = record.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


@dataclass
class _Tally:
    """Counts and the first examples, accumulated stretch by stretch."""

    examples: int
    differing: int = 0
    only_reference: int = 0
    only_target: int = 0
    first: list[tuple[str, str]] = field(default_factory=list)

    def _example(self, reference: str, target: str) -> None:
        self.first.append((_shown(reference) if reference else "", _shown(target) if target else ""))

    def add(self, reference: list[str], target: list[str]) -> None:
        """One non-matching stretch: records paired in order, the longer side's excess only on that side."""
        paired = min(len(reference), len(target))
        self.differing += paired
        self.only_reference += len(reference) - paired
        self.only_target += len(target) - paired
        # Only as many as are still wanted: a stretch can be the lookahead's 100,000 records long.
        for index in range(min(max(len(reference), len(target)), self.examples - len(self.first))):
            self._example(
                reference[index] if index < len(reference) else "", target[index] if index < len(target) else ""
            )


def _take(pending: deque[str], records: Iterator[str]) -> str | None:
    """The next record: one read ahead and pushed back first, else the stream's next; None at its end."""
    return pending.popleft() if pending else next(records, None)


def diff_records(
    reference: Iterator[str], target: Iterator[str], *, lookahead: int = LOOKAHEAD, examples: int = EXAMPLES
) -> tuple[int, int, int, list[tuple[str, str]]]:
    """Stream two record sequences and count how they differ, in order.

    Returns ``(differing, only_in_reference, only_in_target, first)``. Method: both streams are read in
    lockstep while they agree, keeping nothing. At a disagreement, both sides are read ahead one record
    at a time, each new record looked up among the other side's read-ahead records (a dict), until a
    record common to both is found: the anchor nearest to the disagreement (smallest sum of distances).
    The stretches before the anchor are tallied - paired off in order as differing records, the longer
    stretch's excess as only on that side - and lockstep resumes at the anchor. So a changed record is
    one differing record, and an insertion or deletion of any length up to ``lookahead`` records is
    counted as only on one side, after which the streams agree again.

    Limits: memory is bounded by ``lookahead`` records per side, and time is linear, so files of any
    size stream through. Order matters, as it does for the digest: the same records in another order
    count as removed on one side and added on the other. A divergence with no common record within
    ``lookahead`` records is tallied as it stands (paired off) and lockstep resumes after it, so a
    longer insertion or deletion inflates the differing count. A record that repeats often (a
    constant line) can anchor early; the counts then still add up but the pairing is rougher.
    """
    tally = _Tally(examples)
    ours_pending: deque[str] = deque()
    theirs_pending: deque[str] = deque()
    while True:
        mine = _take(ours_pending, reference)
        other = _take(theirs_pending, target)
        if mine is None and other is None:
            break
        if mine == other:
            continue
        if mine is None or other is None:  # one stream has ended: the other's remaining records are its own
            tally.add([mine] if mine is not None else [], [other] if other is not None else [])
            continue
        ours, theirs = [mine], [other]
        ours_at, theirs_at = {mine: 0}, {other: 0}
        anchor: tuple[int, int] | None = None
        while anchor is None:
            found: list[tuple[int, int]] = []
            grew = False
            if len(ours) < lookahead and (record := _take(ours_pending, reference)) is not None:
                ours_at.setdefault(record, len(ours))
                ours.append(record)
                grew = True
                if record in theirs_at:
                    found.append((len(ours) - 1, theirs_at[record]))
            if len(theirs) < lookahead and (record := _take(theirs_pending, target)) is not None:
                theirs_at.setdefault(record, len(theirs))
                theirs.append(record)
                grew = True
                if record in ours_at:
                    found.append((ours_at[record], len(theirs) - 1))
            if found:
                anchor = min(found, key=sum)
            elif not grew:
                break
        if anchor is None:  # nothing in common within the lookahead (or before both streams ended)
            tally.add(ours, theirs)
            continue
        i, j = anchor
        tally.add(ours[:i], theirs[:j])
        # The anchor and everything read past it go back in front of the streams; lockstep resumes there.
        ours_pending.extendleft(reversed(ours[i:]))
        theirs_pending.extendleft(reversed(theirs[j:]))
    return tally.differing, tally.only_reference, tally.only_target, tally.first


@dataclass(frozen=True)
class _Level:
    """One level of sameness for one output on every target."""

    same: bool
    digests: dict[str, str]
    records: dict[str, int]
    differences: list[Difference]


def _level(
    targets: Sequence[str], reference_target: str, openers: Mapping[str, Opener], lookahead: int, examples: int
) -> _Level:
    """Digest every target's records (``openers``: the targets that have the output) and diff the unequal."""
    digests, records = {}, {}
    for target, open_records in openers.items():
        digests[target], records[target] = _hash_counted(open_records())
    differences = []
    for target in targets:
        if target == reference_target:
            continue
        ours, theirs = openers.get(reference_target), openers.get(target)
        if ours is None and theirs is None:
            continue  # absent on both: this target agrees with the reference
        if ours is not None and theirs is not None and digests[target] == digests[reference_target]:
            continue
        differing, only_ours, only_theirs, first = diff_records(
            ours() if ours else iter(()), theirs() if theirs else iter(()), lookahead=lookahead, examples=examples
        )
        differences.append(Difference(target, differing, only_ours, only_theirs, first))
    same = len(openers) == len(targets) and len(set(digests.values())) == 1
    return _Level(same, digests, records, differences)


def _as_paths(files: Path | Sequence[Path]) -> tuple[Path, ...]:
    return (files,) if isinstance(files, Path) else tuple(files)


def compare(
    outputs: Mapping[str, Mapping[str, Path | Sequence[Path]]],
    reference_target: str,
    tool: str,
    ignore: Sequence[str] | None = None,
    *,
    include_indexes: bool = False,
    reference: str | Path | None = None,
    lookahead: int = LOOKAHEAD,
    examples: int = EXAMPLES,
    ignore_phase: bool = False,
) -> list[EquivalenceResult]:
    """Compare each output of ``tool`` on every target with the reference target's, at two levels.

    ``outputs`` maps target → relative output path → its file (see :func:`output_files`), or the files
    of that name in each of the target's shards. When any target has more than one file for a name,
    every target's files of that name are compared merged (:func:`merged_records`): header lines once,
    records sorted; otherwise file with file, records in file order. ``comparison`` says which.

    Every relative path found on any target is one :class:`EquivalenceResult`, sorted by path. First
    level: ``identical`` means the output exists on every target and all normalised digests are equal;
    ``records`` counts each target's normalised records. ``digests`` holds only the targets where the
    output exists, so a missing output is the target's absence from it; its :class:`Difference` then
    counts every record of the reference's file as only in the reference (or, when the reference target
    is the one lacking it, every record of the target's as only in the target). Second level, for
    VCF/BCF outputs only: ``calls`` compares the records as VCF content (:mod:`.calls`), ``0|1`` and
    ``0/1`` the same genotype only with ``ignore_phase``. ``reference`` is a CRAM reference FASTA (see
    :func:`normalise_records`).
    """
    if reference_target not in outputs:
        raise ValueError(f"reference target {reference_target!r} has no outputs entry (targets: {sorted(outputs)})")
    names = sorted({name for files in outputs.values() for name in files if include_indexes or not is_index(name)})
    targets = list(outputs)
    results = []
    for name in names:
        present = {target: _as_paths(files[name]) for target, files in outputs.items() if name in files}
        merged = any(len(paths) > 1 for paths in present.values())
        if merged:
            counts = ", ".join(f"{target}: {len(paths)}" for target, paths in present.items())
            comparison = f"every shard's file merged, records sorted by position (files per target: {counts})"
            openers: dict[str, Opener] = {
                target: lambda paths=paths: merged_records(paths, ignore, reference=reference)
                for target, paths in present.items()
            }
        else:
            comparison = "file with file, records in file order"
            openers = {
                target: lambda path=paths[0]: _tolerant(lambda: normalise_records(path, ignore, reference=reference))
                for target, paths in present.items()
            }
        level = _level(targets, reference_target, openers, lookahead, examples)
        calls_level = None
        if any(sniff(paths[0]) in ("vcf", "bcf") for paths in present.values()):
            if merged:
                call_openers: dict[str, Opener] = {
                    target: lambda paths=paths: _merged_calls(paths, ignore_phase) for target, paths in present.items()
                }
            else:
                call_openers = {
                    target: lambda path=paths[0]: _tolerant(lambda: calls.call_records(path, ignore_phase=ignore_phase))
                    for target, paths in present.items()
                }
            second = _level(targets, reference_target, call_openers, lookahead, examples)
            calls_level = CallsComparison(second.same, second.digests, second.records, second.differences, ignore_phase)
        results.append(
            EquivalenceResult(
                tool,
                name,
                reference_target,
                level.digests,
                level.same,
                level.differences,
                level.records,
                comparison,
                calls_level,
            )
        )
    return results
