"""Shards: a data set's files split into N parts of about equal size, and the work in them.

**Balancing.** Files are placed largest first, each into the shard with the fewest bytes so far
(ties: the lower shard index); equal sizes are taken in path order. This is the classic greedy
"longest processing time first" rule: the largest shard is at most 4/3 of the optimum, and far closer
for many files. The seed cut its sorted file list into equal *counts* (``np.array_split``), so one GPU
could get all the large files and straggle; here sizes decide. The result depends only on the paths
and their sizes, so the same data set always gives the same shards.

**Work** (:func:`measure_work`) is what throughput and cost are divided by:

* ``bytes`` - file sizes on disk (a ``.gz`` file counts its compressed size);
* ``reads`` - FASTQ or FASTA records;
* ``bases`` - the sum of the records' sequence lengths;
* ``samples`` - one per file.

FASTQ and FASTA are recognised by their first character (``@`` or ``>``), plain, gzip or bgzip
(recognised by magic bytes, not the name) or bzip2. Multi-line FASTQ and FASTA records are read
correctly: a FASTQ quality string is read until it is as long as its sequence, so a quality line
starting with ``@`` is not taken for a header.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

WorkKind = Literal["bytes", "reads", "bases", "samples"]
WORK_KINDS: tuple[WorkKind, ...] = ("bytes", "reads", "bases", "samples")

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"


@dataclass(frozen=True)
class Work:
    """How work is counted: a measured ``kind``, or ``metric``: the number a tool's parser reports."""

    kind: Literal["bytes", "reads", "bases", "samples", "metric"]
    metric: str | None = None


def work_spec(value: object) -> Work:
    """A :class:`Work` from its plan form: ``bytes``, ``reads``, ``bases``, ``samples`` or ``{metric: NAME}``."""
    if isinstance(value, Work):
        return value
    if isinstance(value, str) and value in WORK_KINDS:
        return Work(value)  # type: ignore[arg-type]
    if isinstance(value, dict) and set(value) == {"metric"} and isinstance(value["metric"], str) and value["metric"]:
        return Work("metric", value["metric"])
    raise ValueError(f"{value!r} is not a kind of work: use {', '.join(WORK_KINDS)} or {{metric: NAME}}")


@dataclass(frozen=True)
class Shard:
    """One shard: its index (the array child it becomes), its files in path order, their total bytes."""

    index: int
    files: tuple[Path, ...]
    bytes: int


def split_by_size(sizes: Mapping[str | Path, int] | Sequence[tuple[str | Path, int]], n: int) -> list[Shard]:
    """Split files of known ``sizes`` into ``n`` shards balanced by bytes (see the module docstring).

    Raises :class:`ValueError` for ``n < 1``, a repeated path, a negative size, or fewer files than
    shards (an empty shard would leave a GPU idle while it is billed).
    """
    if n < 1:
        raise ValueError(f"the number of shards must be at least 1, not {n}")
    items = list(sizes.items()) if isinstance(sizes, Mapping) else list(sizes)
    paths = [Path(path) for path, _ in items]
    if len(set(paths)) != len(paths):
        repeated = sorted({str(p) for p in paths if paths.count(p) > 1})
        raise ValueError(f"files listed more than once: {', '.join(repeated)}")
    if any(size < 0 for _, size in items):
        raise ValueError("file sizes must be >= 0")
    if len(items) < n:
        raise ValueError(
            f"{n} shards but only {len(items)} input file(s): every shard needs at least one file "
            "(give more, smaller files, or use fewer shards)"
        )
    loads = [0] * n
    members: list[list[Path]] = [[] for _ in range(n)]
    # Largest first; path order among equal sizes makes the result independent of the input order.
    for path, size in sorted(zip(paths, (s for _, s in items), strict=True), key=lambda ps: (-ps[1], str(ps[0]))):
        target = min(range(n), key=lambda i: (loads[i], i))
        loads[target] += size
        members[target].append(path)
    return [Shard(index=i, files=tuple(sorted(members[i], key=str)), bytes=loads[i]) for i in range(n)]


def file_sizes(files: Iterable[str | Path]) -> dict[Path, int]:
    """Each file's size on disk, in bytes."""
    return {Path(f): os.path.getsize(f) for f in files}


def shard_files(files: Iterable[str | Path], n: int) -> list[Shard]:
    """Measure ``files`` and split them into ``n`` shards balanced by size."""
    return split_by_size(file_sizes(files), n)


@contextmanager
def open_sequence_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a possibly compressed file for binary reading, choosing the codec by its magic bytes."""
    with open(path, "rb") as probe:
        magic = probe.read(3)
    opener: Callable[..., IO[bytes]] = open
    if magic.startswith(_GZIP_MAGIC):
        opener = gzip.open
    elif magic.startswith(_BZIP2_MAGIC):
        opener = bz2.open
    with opener(path, "rb") as stream:
        yield stream


def _fastq_counts(lines: Iterator[bytes], path: str | Path) -> tuple[int, int]:
    reads = bases = 0
    state = "header"
    sequence = quality = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if state == "header":
            if not line.strip():
                continue  # blank lines between records, or the empty quality line of an empty read
            if not line.startswith(b"@"):
                raise ValueError(f"{path}: line {number}: expected a FASTQ header starting with '@'")
            reads += 1
            sequence = 0
            state = "sequence"
        elif state == "sequence":
            if line.startswith(b"+"):
                quality = 0
                # An empty read has an empty quality line: the header state skips it as blank.
                state = "quality" if sequence else "header"
            else:
                sequence += len(line.strip())
        else:
            quality += len(line.strip())
            if quality >= sequence:
                bases += sequence
                state = "header"
    if state != "header":
        raise ValueError(f"{path}: truncated FASTQ: the last record ({reads}) has no complete quality string")
    return reads, bases


def _fasta_counts(lines: Iterator[bytes]) -> tuple[int, int]:
    reads = bases = 0
    for raw in lines:
        if raw.startswith(b">"):
            reads += 1
        elif not raw.startswith(b";"):  # old-style FASTA comment lines carry no sequence
            bases += len(raw.strip())
    return reads, bases


def count_records(path: str | Path) -> tuple[int, int]:
    """``(reads, bases)`` in a FASTQ or FASTA file (plain, gzip/bgzip or bzip2)."""
    with open_sequence_file(path) as stream:
        first = b""
        for raw in stream:
            if raw.strip():
                first = raw
                break
        if not first:
            return 0, 0  # an empty file holds no reads
        rest = _chain(first, stream)
        if first.startswith(b"@"):
            return _fastq_counts(rest, path)
        if first.startswith(b">"):
            return _fasta_counts(rest)
    raise ValueError(
        f"{path}: not FASTQ or FASTA (it starts with {first[:20]!r}); count its work as bytes or samples, "
        "or take it from the tool's output with work: {metric: NAME}"
    )


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def measure_work(files: Iterable[str | Path], kind: str) -> float:
    """The units of work in ``files``: ``bytes``, ``reads``, ``bases`` or ``samples`` (see the module docstring)."""
    paths = list(files)
    if kind == "samples":
        return float(len(paths))
    if kind == "bytes":
        return float(sum(os.path.getsize(p) for p in paths))
    if kind in ("reads", "bases"):
        index = 0 if kind == "reads" else 1
        return float(sum(count_records(p)[index] for p in paths))
    raise ValueError(
        f"cannot measure work {kind!r} from input files: use one of {', '.join(WORK_KINDS)} "
        "(a metric is read from the tool's output, not measured)"
    )
