"""Several shards' copies of one output as one stream of records, in a canonical order.

When two targets split the data set into different numbers of shards, shard 3 of one holds other
inputs than shard 3 of the other, so their files cannot be compared shard by shard. What can be
compared is what all the shards produced together: the union of their records. Within a file the
order follows the shard's inputs, so the union is put in an order that depends only on the records:
sorted by a key (:func:`record_key`: contig and position for VCF and SAM records, the text for
anything else), with header lines - which every shard repeats - kept once.

Streams that are each sorted by the key already (coordinate-sorted BAMs and VCFs, the usual case) are
merged lazily, in memory bounded by the number of streams; if any one is not, all the records are
sorted in memory, which is what a merged comparison of unsorted outputs costs.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

#: Orders records: (contig rank, contig name, position, whole record). Comparable for every string.
Key = tuple[int, str, int, str]
#: Opens one stream of records afresh (each call reads the file again).
Opener = Callable[[], Iterator[str]]

_VCF_CONTIG = re.compile(r"^##contig=<ID=([^,>]+)")
_SAM_CONTIG = re.compile(r"^@SQ\t(?:.*\t)?SN:([^\t]+)")
#: A rank after every named contig: records on contigs the header does not list, and unmapped reads.
_UNLISTED = 1 << 30
_UNMAPPED = _UNLISTED + 1


def contig_ranks(header: Iterable[str]) -> dict[str, int]:
    """Each contig's position in the header (VCF ``##contig`` or SAM ``@SQ`` lines), first mention wins."""
    ranks: dict[str, int] = {}
    for line in header:
        match = _VCF_CONTIG.match(line) or _SAM_CONTIG.match(line)
        if match:
            ranks.setdefault(match.group(1), len(ranks))
    return ranks


def record_key(kind: str, ranks: dict[str, int]) -> Callable[[str], Key]:
    """The sort key for one kind of record (see :func:`genobatch.benchmark.equivalence.sniff`).

    VCF records (and the canonical calls of :mod:`.calls`, which start the same way) sort by CHROM in
    header order, then POS; SAM records by RNAME in header order, then POS, unmapped reads last. The
    whole record breaks ties, so the order never depends on which shard a record came from. Records
    that do not parse (an unreadable file's marker) sort by their text, after everything else.
    """
    columns = {"vcf": (0, 1), "bcf": (0, 1), "calls": (0, 1), "sam": (2, 3), "alignments": (2, 3)}.get(kind)

    def key(record: str) -> Key:
        if columns is None:
            return (0, "", 0, record)
        fields = record.split("\t", max(columns) + 1)
        try:
            contig, position = fields[columns[0]], int(fields[columns[1]])
        except (IndexError, ValueError):
            return (_UNMAPPED + 1, "", 0, record)
        rank = _UNMAPPED if contig == "*" else ranks.get(contig, _UNLISTED)
        return (rank, contig, position, record)

    return key


def is_sorted(records: Iterable[str], key: Callable[[str], Key]) -> bool:
    """Whether ``records`` never go backwards by ``key`` (reads the whole stream)."""
    previous: Key | None = None
    for record in records:
        current = key(record)
        if previous is not None and current < previous:
            return False
        previous = current
    return True


def merge_sorted(openers: Sequence[Opener], key: Callable[[str], Key]) -> Iterator[str]:
    """All records of all streams, ordered by ``key``: lazily if each stream is sorted, else in memory."""
    if all(is_sorted(open_records(), key) for open_records in openers):
        yield from heapq.merge(*(open_records() for open_records in openers), key=key)
    else:
        yield from sorted((record for open_records in openers for record in open_records()), key=key)
