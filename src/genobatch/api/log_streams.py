"""Job logs as CloudWatch Logs streams: naming, finding, listing and reading them.

On AWS Batch a job attempt is an ECS task, and its output goes to the CloudWatch Logs group
``/aws/batch/job`` in the stream ``<job definition name>/default/<ECS task id>`` (``default`` is
the container name Batch uses). DescribeJobs hands clients that name as ``logStreamName``; Airflow,
Nextflow and Metaflow then read the stream with GetLogEvents. A definition's ``logConfiguration``
with the ``awslogs`` driver may name another group (``awslogs-group``) and replace the definition
name by ``awslogs-stream-prefix``; any other driver sends nothing to CloudWatch, so such a job has
no stream (and no ``logStreamName``), as on AWS.

**Task ids.** Every attempt needs its own 32-hex-digit task id that leads back to the job and
attempt without a lookup table, so the id *encodes* them (it is not secret; AWS's is not either):

* a job's id is a UUID4: 32 hex digits of which digit 12 is always ``4`` and digit 16 one of
  ``8 9 a b``. The task id of attempt ``n`` of a plain job is that UUID with digit 12 replaced by
  ``n - 1`` (attempts are 1 to 10): decoding restores the ``4``, and the job is read by its key;
* an array child ``<parent>:<index>`` needs 14 more bits than there is room for, so its task id
  keeps the parent's digits 0-27, writes digit 16 as ``0``-``3`` (the parent's ``8``-``b`` minus 8,
  which marks the form) and puts the index in digits 28-31. The parent's last four digits are not
  kept: the child is found by ``parent_id LIKE`` that pattern and its index (2^-100 odds of two
  parents sharing the other 26 random digits). That query scans, so resolved children are cached.

**Line times.** The local backend writes an attempt's output to a plain file with no per-line
times, so every event of an attempt carries the attempt's start time as both ``timestamp`` and
``ingestionTime``. That is the honest coarse answer: time filters keep or drop an attempt's events
as a whole, and no event claims a precision nothing measured.

**Reading.** Events are the log's lines without their newline; empty lines are not events (AWS
refuses empty messages). A running attempt's unfinished last line is held back until its newline
arrives, so a follower never gets half a line; once the attempt has ended it is an event. Bytes
come through :func:`genobatch.backends.host.read_log`, the reader the native logs endpoint uses.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, select

from genobatch.backends.host import LOG_FILE, read_log
from genobatch.store import jobs as job_rows
from genobatch.store.schema import job_definitions
from genobatch.store.schema import jobs as jobs_table

DEFAULT_GROUP = "/aws/batch/job"
_PAGE = 1000  # job rows read at a time when listing every stream
_MAX_NARROWING = 500  # more job definitions than this match a listing: it reads every job that ran
CONTAINER_NAME = "default"
#: CloudWatch's largest event is 256 KiB including 26 bytes of overhead; longer lines are split.
MAX_EVENT_BYTES = 256 * 1024 - 26
_READ_CHUNK = 1 << 20
_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
_CACHE_LIMIT = 10_000
_resolved_children: dict[str, str] = {}  # task id -> array child id (ids never change)

#: Where an attempt's files are: ``Engine.attempt_dir``, passed in so this module reads no settings.
AttemptDir = Callable[[str, int], "os.PathLike[str] | str"]


# ------------------------------------------------------------------------------------- naming


def task_id(job_id: str, attempt: int) -> str | None:
    """The ECS-style task id of ``attempt`` of ``job_id`` (None for an id genobatch did not make)."""
    parent, _, index = job_id.partition(":")
    try:
        digits = uuid.UUID(parent).hex
    except ValueError:
        return None
    if parent != str(uuid.UUID(parent)) or digits[12] != "4" or digits[16] not in "89ab":
        return None
    if not 1 <= attempt <= 16:
        return None
    first = digits[:12] + format(attempt - 1, "x") + digits[13:16]
    if not index:
        return first + digits[16:]
    if not index.isdigit() or int(index) > 0xFFFF:
        return None
    return first + format(int(digits[16], 16) - 8, "x") + digits[17:28] + format(int(index), "04x")


def _log_options(spec: dict) -> dict | None:
    """The awslogs options of a job's container; None when it logs with another driver."""
    config = (spec or {}).get("container", {}).get("logConfiguration") or {}
    if config.get("logDriver", "awslogs") != "awslogs":
        return None
    return config.get("options") or {}


def definition_name(definition_arn: str) -> str:
    """``name`` from ``arn:...:job-definition/name:revision``."""
    return definition_arn.rsplit("/", 1)[-1].split(":")[0]


def location(row: dict, attempt: int) -> tuple[str, str] | None:
    """``(log group, log stream name)`` of an attempt of a job row; None if it has no stream."""
    options = _log_options(row["spec"])
    task = task_id(row["id"], attempt)
    if options is None or task is None:
        return None
    prefix = options.get("awslogs-stream-prefix") or definition_name(row["definition_arn"])
    return options.get("awslogs-group") or DEFAULT_GROUP, f"{prefix}/{CONTAINER_NAME}/{task}"


# ------------------------------------------------------------------------------------- streams


@dataclass(frozen=True, slots=True)
class Stream:
    """One attempt's log as a CloudWatch stream."""

    group: str
    name: str
    job_id: str
    attempt: int
    created_at: int  # when the attempt was placed (its ECS task created)
    event_time: int | None  # the attempt's start: the time of each of its events (None: not started)
    ended: bool
    attempt_dir: str

    def sort_key(self) -> tuple[int, str]:
        """Events of several streams interleave by time, then stream name."""
        return (self.event_time or 0, self.name)


def _streams_of(row: dict, attempt_dir: AttemptDir) -> Iterator[Stream]:
    for attempt in row["state"].get("attempts", []):
        where = location(row, attempt["number"])
        if where is None:
            continue
        started = attempt.get("started_at")
        yield Stream(
            group=where[0],
            name=where[1],
            job_id=row["id"],
            attempt=attempt["number"],
            created_at=attempt.get("placed_at") or row["created_at"],
            event_time=started,
            ended=attempt.get("stopped_at") is not None,
            attempt_dir=os.fspath(attempt_dir(row["id"], attempt["number"])),
        )


def _decode(task: str) -> tuple[str | None, str | None, int, int]:
    """``(job id, parent LIKE pattern, index, attempt)`` for a task id; one of the first two is None."""
    attempt = int(task[12], 16) + 1
    form = int(task[16], 16)
    if form >= 8:
        return str(uuid.UUID(task[:12] + "4" + task[13:])), None, -1, attempt
    if form > 3:
        return None, None, -1, attempt
    digits = task[:12] + "4" + task[13:16] + format(form + 8, "x") + task[17:28]
    pattern = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:28]}____"
    return None, pattern, int(task[28:], 16), attempt


def _child_id(conn: Connection, task: str, pattern: str, index: int) -> str | None:
    if task in _resolved_children:
        return _resolved_children[task]
    query = select(jobs_table.c.id).where(jobs_table.c.parent_id.like(pattern), jobs_table.c.array_index == index)
    found = [job_id for job_id in conn.execute(query).scalars() if task_id(job_id, int(task[12], 16) + 1) == task]
    if len(found) != 1:
        return None
    if len(_resolved_children) >= _CACHE_LIMIT:
        _resolved_children.clear()
    _resolved_children[task] = found[0]
    return found[0]


def find(conn: Connection, attempt_dir: AttemptDir, group: str, name: str) -> Stream | None:
    """The stream ``name`` of log group ``group``, or None if there is no such stream."""
    task = name.rsplit("/", 1)[-1]
    if not _TASK_ID.match(task):
        return None
    job_id, pattern, index, attempt = _decode(task)
    if job_id is None and pattern is not None:
        job_id = _child_id(conn, task, pattern, index)
    if job_id is None:
        return None
    rows = job_rows.get_rows(conn, [job_id])
    if not rows:
        return None
    for stream in _streams_of(rows[0], attempt_dir):
        if stream.attempt == attempt and stream.group == group and stream.name == name:
            return stream
    return None


def definitions_logging_to(conn: Connection, group: str, prefix: str) -> list[str] | None:
    """The ARNs of the job definitions (every revision, any status) whose jobs' streams are in
    ``group`` and may start with ``prefix``; None when that cannot narrow a listing (no prefix and
    the default group, or too many definitions).

    A job's stream is named from its definition's revision alone (``awslogs-stream-prefix`` or the
    definition's name, and ``awslogs-group``; a job cannot override its log configuration), so
    these definitions' jobs are all that a listing of ``group`` by ``prefix`` has to read.
    """
    if not prefix and group == DEFAULT_GROUP:
        return None
    t = job_definitions
    arns = []
    for arn, name, document in conn.execute(select(t.c.arn, t.c.name, t.c.document)):
        options = _log_options({"container": document.get("containerProperties") or {}})
        if options is None or (options.get("awslogs-group") or DEFAULT_GROUP) != group:
            continue
        head = f"{options.get('awslogs-stream-prefix') or name}/{CONTAINER_NAME}/"
        if head.startswith(prefix) or prefix.startswith(head):
            arns.append(arn)
    return arns if len(arns) <= _MAX_NARROWING else None


def all_streams(conn: Connection, attempt_dir: AttemptDir, group: str, prefix: str = "") -> list[Stream]:
    """Every stream of ``group`` whose name starts with ``prefix``, by name.

    There is no index from streams to jobs: this reads the jobs that have had an attempt (queued
    jobs are skipped by an index), only those of the job definitions whose streams can match when
    that narrows it (:func:`definitions_logging_to`), in pages.
    """
    streams: list[Stream] = []
    definitions = definitions_logging_to(conn, group, prefix)
    if definitions == []:
        return streams
    last_id = None
    while True:
        rows = job_rows.attempted_rows(conn, after_id=last_id, limit=_PAGE, definition_arns=definitions)
        for row in rows:
            streams.extend(s for s in _streams_of(row, attempt_dir) if s.group == group and s.name.startswith(prefix))
        if len(rows) < _PAGE:
            break
        last_id = rows[-1]["id"]
    streams.sort(key=lambda s: s.name)
    return streams


def group_exists(conn: Connection, attempt_dir: AttemptDir, group: str) -> bool:
    """The default group always exists; another one while some job's attempt logs to it."""
    return group == DEFAULT_GROUP or bool(all_streams(conn, attempt_dir, group))


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Line:
    """One event's bytes: ``start`` and ``end`` offsets (``end`` past its newline, if any)."""

    start: int
    end: int
    text: str


def log_size(stream: Stream) -> int:
    """Bytes in the attempt's log so far (0 before it exists)."""
    try:
        return os.path.getsize(os.path.join(stream.attempt_dir, LOG_FILE))
    except OSError:
        return 0


def _split(data: bytes, base: int, final: bool) -> tuple[list[Line], int]:
    """Complete lines of ``data`` (read from offset ``base``) and the offset after the last one.

    An unfinished last piece counts only when ``final`` or when it reached the event size limit.
    """
    lines: list[Line] = []
    pos = 0
    while pos < len(data):
        newline = data.find(b"\n", pos, pos + MAX_EVENT_BYTES + 1)
        if newline == -1:
            if len(data) - pos >= MAX_EVENT_BYTES:
                end = pos + MAX_EVENT_BYTES
            elif final:
                end = len(data)
            else:
                break
            piece, after = data[pos:end], end
        else:
            piece, after = data[pos:newline], newline + 1
        if piece.strip(b"\r"):
            lines.append(Line(base + pos, base + after, piece.decode("utf-8", errors="replace")))
        pos = after
    return lines, base + pos


def read_forward(stream: Stream, offset: int, max_events: int, max_bytes: int) -> tuple[list[Line], int]:
    """Events from ``offset`` on: at most ``max_events`` of together at most ``max_bytes`` bytes.

    Returns the events and the offset to continue from (unchanged when nothing new is complete).
    """
    lines: list[Line] = []
    size = 0
    while len(lines) < max_events:
        data, read_end = read_log(stream.attempt_dir, offset, _READ_CHUNK)
        if not data:
            break
        # After the chunk there may be more bytes: only the log's true end is "final".
        final = stream.ended and read_end >= log_size(stream)
        chunk_lines, consumed = _split(data, offset, final)
        for line in chunk_lines:
            cost = len(line.text.encode()) + 26
            if len(lines) >= max_events or (lines and size + cost > max_bytes):
                return lines, line.start
            lines.append(line)
            size += cost
        if consumed == offset:
            break  # only an unfinished line is left
        offset = consumed
    return lines, offset


def read_backward(stream: Stream, end: int, max_events: int, max_bytes: int) -> tuple[list[Line], int]:
    """The last events before offset ``end`` (a line boundary), oldest first, and where they begin."""
    collected: list[Line] = []
    size = 0
    upto = end
    while upto > 0 and len(collected) < max_events:
        start = max(0, upto - _READ_CHUNK)
        data, _ = read_log(stream.attempt_dir, start, upto - start)
        if start > 0:
            # The chunk's first piece may be the tail of a longer line: leave it to the next round,
            # unless there is no newline at all (a line longer than the chunk is cut, as on AWS).
            newline = data.find(b"\n")
            if 0 <= newline < len(data) - 1:
                start, data = start + newline + 1, data[newline + 1 :]
        lines, _ = _split(data, start, True)
        for line in reversed(lines):
            cost = len(line.text.encode()) + 26
            if len(collected) >= max_events or (collected and size + cost > max_bytes):
                return list(reversed(collected)), collected[-1].start
            collected.append(line)
            size += cost
        upto = start
    begin = collected[-1].start if collected else upto
    return list(reversed(collected)), begin


def complete_end(stream: Stream) -> int:
    """The offset after the last complete event: the log's end, less a running attempt's open line."""
    size = log_size(stream)
    if stream.ended or size == 0:
        return size
    tail_start = max(0, size - MAX_EVENT_BYTES)
    data, _ = read_log(stream.attempt_dir, tail_start, size - tail_start)
    newline = data.rfind(b"\n")
    if newline == -1:
        return tail_start if len(data) < MAX_EVENT_BYTES else size
    return tail_start + newline + 1
