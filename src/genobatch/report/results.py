"""Results a run's jobs publish (named metrics per sample) and its failed jobs, for reports and the console.

**The contract.** A job publishes results by writing one line to its standard output (or error)::

    genobatch:results {"metrics": {"precision": 0.998, "snv.recall": 1.0}, "units": {"precision": "fraction"}}

``genobatch:results`` followed by one space and a JSON object on the same line:

* ``metrics`` (required): metric name -> number or null. Names are up to 64 characters; use dotted
  names for groups (``snv.precision``). Several lines (from one job or from several stages of a
  sample) merge; where a name repeats, the later job wins.
* ``units`` (optional): metric name -> ``"fraction"`` (shown as a percentage), or a short suffix
  shown after the number (``"x"`` for coverage).
* ``method`` (optional): one sentence saying how the metrics were obtained (e.g. the truth set and
  how calls are matched); the report prints each distinct method once.
* ``sample`` (optional): the sample the metrics belong to; by default the job's sample
  (``genobatch:sample`` tag, or the array index under ``genobatch:sample-prefix``).

Why a log line: every backend brings an attempt's output into ``<attempt dir>/output.log`` (the
local backend writes it there, Slurm writes it on the shared disk, the AWS Batch backend copies the
job's CloudWatch stream), so the same line works wherever the job runs, with nothing to upload and
no extra permission. Only the last :data:`SCAN_BYTES` of the log of each job's *last* attempt are
read, and only once that attempt has ended: print the line near the end. Results live in the log,
so the retention policy that deletes old logs deletes them too.

Samples come out in natural order (``sample2`` before ``sample10``). A sample with a failed job is
``FAILED`` with that job's reason, whether or not other stages published metrics, so a failed sample
shows as failed rather than missing.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MARKER = "genobatch:results "
#: How much of the end of each log is searched for result lines (and how far back a log tail starts).
SCAN_BYTES = 256 * 1024
MAX_NAME = 64
#: Lines of log kept per failed job for the errors section.
TAIL_LINES = 20
_NATURAL = re.compile(r"(\d+)")

#: Reads ``(job id, attempt number)``'s log, or its last ``limit`` bytes; "" when there is none.
LogReader = Callable[[str, int], str]


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``sample2`` < ``sample10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _NATURAL.split(text))


def metric_label(name: str) -> str:
    """A column header from a published metric name: ``snv.f1`` -> ``SNV F1``, ``mapped_fraction`` -> ``mapped
    fraction``."""
    words = name.replace(".", " ").replace("_", " ").split()
    return " ".join(word.upper() if word in ("snv", "snp", "f1", "sv") else word for word in words)


def metric_text(value: float | None, unit: str | None) -> str:
    """A published value as people read it: fractions as percentages, ``30.2x`` for coverage."""
    if value is None:
        return "–"
    if unit == "fraction":
        return f"{value * 100:.2f}%"
    text = f"{value:,.0f}" if isinstance(value, int) else f"{value:,.4g}"
    return f"{text}{unit}" if unit and len(unit) <= 2 else f"{text} {unit}" if unit else text


@dataclass(frozen=True)
class Published:
    """One results line, validated."""

    metrics: dict[str, float | None]
    units: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    sample: str | None = None


def parse_line(payload: str) -> Published:
    """Validate the JSON after the marker; ValueError naming the field and the problem."""
    try:
        document = json.loads(payload)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(document, dict):
        raise ValueError("must be a JSON object")
    unknown = set(document) - {"metrics", "units", "method", "sample"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))} (allowed: metrics, units, method, sample)")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty object of name -> number")
    clean: dict[str, float | None] = {}
    for name, value in metrics.items():
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"metric name {name[:80]!r} must be 1 to {MAX_NAME} characters")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"metrics.{name} must be a number or null, got {type(value).__name__}")
        clean[name] = None if value is None or not math.isfinite(value) else value
    units = document.get("units", {})
    if not isinstance(units, dict) or not all(isinstance(v, str) and len(v) <= 16 for v in units.values()):
        raise ValueError("units must be an object of metric name -> text of at most 16 characters")
    method, sample = document.get("method"), document.get("sample")
    if method is not None and not isinstance(method, str):
        raise ValueError("method must be text")
    if sample is not None and (not isinstance(sample, str) or not sample):
        raise ValueError("sample must be non-empty text")
    return Published(clean, {k: v for k, v in units.items() if k in clean}, method, sample)


def parse_log(text: str) -> tuple[list[Published], list[str]]:
    """Every results line of a log, and a problem per malformed one (``line N: why``)."""
    published, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        start = line.find(MARKER)
        if start < 0 or line[:start].strip():
            continue  # the marker must start the line (after whitespace): a log quoting it is not a result
        try:
            published.append(parse_line(line[start + len(MARKER) :]))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
    return published, problems


def results_line(metrics: dict[str, Any], units: dict[str, str] | None = None, method: str | None = None) -> str:
    """The line a job prints to publish ``metrics`` (what :func:`parse_log` reads back)."""
    document: dict[str, Any] = {"metrics": metrics}
    if units:
        document["units"] = units
    if method:
        document["method"] = method
    return MARKER + json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True)
class SampleResults:
    """One sample: its state over all its jobs, its metrics, and why it failed if it did."""

    sample: str
    #: SUCCEEDED (every job), FAILED (any job), RUNNING (any job started), else WAITING.
    status: str
    metrics: dict[str, float | None]
    jobs: int
    jobs_done: int
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FailedJob:
    """A job that ended FAILED, with what a reader needs to start fixing it."""

    job_id: str
    name: str
    sample: str | None
    attempts: int
    exit_code: int | None
    reason: str
    log_tail: str


@dataclass(frozen=True)
class RunResults:
    """What the run's jobs published, per sample, and its failed jobs."""

    samples: list[SampleResults]
    #: Column order: metrics in the order jobs published them (stage by stage).
    metrics: list[str]
    units: dict[str, str]
    methods: list[str]
    errors: list[FailedJob]
    problems: list[str]

    def to_document(self) -> dict:
        """JSON-ready (the native API's ``/genobatch/v1/runs/results`` answer)."""
        return {
            "metrics": self.metrics,
            "units": self.units,
            "methods": self.methods,
            "samples": [vars(s) for s in self.samples],
            "errors": [vars(e) for e in self.errors],
            "problems": self.problems,
        }

    @classmethod
    def from_document(cls, document: dict) -> RunResults:
        """The inverse of :meth:`to_document` (what a client reads back)."""
        return cls(
            samples=[SampleResults(**s) for s in document.get("samples", [])],
            metrics=list(document.get("metrics", [])),
            units=dict(document.get("units", {})),
            methods=list(document.get("methods", [])),
            errors=[FailedJob(**e) for e in document.get("errors", [])],
            problems=list(document.get("problems", [])),
        )


def _sample_of(row: dict) -> str | None:
    from genobatch.trace import sample_of  # lazy: keeps report importable without the store's modules

    return sample_of(row)


def _job_name(row: dict) -> str:
    return row["name"] if row["array_index"] is None else f"{row['name']} ({row['array_index']})"


def _reason(row: dict) -> str:
    attempts = row["state"].get("attempts", [])
    last = attempts[-1] if attempts else {}
    return last.get("reason") or row["state"].get("status_reason") or last.get("status_reason") or "no reason given"


def _failure(row: dict) -> str:
    """``name: reason (exit code N)``: AWS's reasons ("Essential container in task exited") need the code."""
    attempts = row["state"].get("attempts", [])
    code = attempts[-1].get("exit_code") if attempts else None
    return f"{_job_name(row)}: {_reason(row)}" + ("" if code is None else f" (exit code {code})")


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def collect(rows: Iterable[dict], read_log: LogReader) -> RunResults:
    """Per-sample results and failed jobs from job rows (array parents skipped) and their logs.

    Pure apart from ``read_log``, which is called once per job whose last attempt has ended.
    """
    by_sample: dict[str, list[dict]] = {}
    metrics: dict[str, dict[str, float | None]] = {}
    order: dict[str, None] = {}
    units: dict[str, str] = {}
    methods: dict[str, None] = {}
    errors, problems = [], []
    for row in rows:
        if row["state"].get("summary") is not None:
            continue
        sample = _sample_of(row)
        if sample is not None:
            by_sample.setdefault(sample, []).append(row)
        attempts = row["state"].get("attempts", [])
        if not attempts or attempts[-1].get("stopped_at") is None:
            published, bad, tail = [], [], ""
        else:
            published, bad, tail = _parsed(read_log, row["id"], attempts[-1]["number"])
        problems += [f"{_job_name(row)} ({row['id']}): results {problem}" for problem in bad]
        for document in published:
            target = document.sample or sample
            if target is None:
                problems.append(f"{_job_name(row)} ({row['id']}): results name no sample and the job has none")
                continue
            by_sample.setdefault(target, [])
            metrics.setdefault(target, {}).update(document.metrics)
            order.update(dict.fromkeys(document.metrics))
            units.update(document.units)
            if document.method:
                methods[document.method] = None
        if row["status"] == "FAILED":
            last = attempts[-1] if attempts else {}
            errors.append(
                FailedJob(
                    job_id=row["id"],
                    name=_job_name(row),
                    sample=sample,
                    attempts=len(attempts),
                    exit_code=last.get("exit_code"),
                    reason=_reason(row),
                    log_tail=tail,
                )
            )
    samples = [
        _sample_results(name, by_sample[name], metrics.get(name, {})) for name in sorted(by_sample, key=natural_key)
    ]
    errors.sort(key=lambda e: (natural_key(e.sample or ""), e.name))
    return RunResults(samples, list(order), units, list(methods), errors, problems)


def _sample_results(sample: str, rows: list[dict], metrics: dict[str, float | None]) -> SampleResults:
    statuses = [row["status"] for row in rows]
    failures = [_failure(row) for row in rows if row["status"] == "FAILED"]
    if failures:
        status = "FAILED"
    elif statuses and all(s == "SUCCEEDED" for s in statuses):
        status = "SUCCEEDED"
    elif any(s in ("STARTING", "RUNNING", "SUCCEEDED") for s in statuses):
        status = "RUNNING"
    else:
        status = "WAITING"
    done = sum(1 for s in statuses if s in ("SUCCEEDED", "FAILED"))
    return SampleResults(sample, status, metrics, len(rows), done, failures)


ParsedLog = tuple[list[Published], list[str], str]  # results lines, problems, the last TAIL_LINES lines

#: Parsed logs of ended attempts by (path, size, mtime): an ended attempt's log does not change, so a console
#: refreshing a run of thousands of jobs stats each log instead of reading and parsing it again.
_PARSED: OrderedDict[tuple[str, int, int], ParsedLog] = OrderedDict()
PARSED_CACHE_SIZE = 100_000


def _parse(text: str) -> ParsedLog:
    published, problems = parse_log(text)
    return published, problems, _tail(text)


def _parsed(read_log: LogReader, job_id: str, attempt: int) -> ParsedLog:
    cached = getattr(read_log, "parsed", None)
    return cached(job_id, attempt) if cached else _parse(read_log(job_id, attempt))


def _read_tail(path: str) -> str:
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - SCAN_BYTES))
            data = log.read(SCAN_BYTES)
    except OSError:
        return ""
    if size > SCAN_BYTES:
        data = data.split(b"\n", 1)[-1]  # drop the partial first line
    return data.decode("utf-8", errors="replace")


def attempt_log_reader(attempt_dir: Callable[[str, int], os.PathLike[str] | str]) -> LogReader:
    """A :data:`LogReader` over attempt directories (``Engine.attempt_dir``): the log's last SCAN_BYTES.

    It also has ``parsed(job_id, attempt)``, which :func:`collect` uses: the parsed log, cached by the
    file's size and modification time (a log that changes or is removed is read again).
    """

    def read(job_id: str, attempt: int) -> str:
        return _read_tail(os.path.join(attempt_dir(job_id, attempt), "output.log"))

    def parsed(job_id: str, attempt: int) -> ParsedLog:
        path = os.path.join(attempt_dir(job_id, attempt), "output.log")
        try:
            status = os.stat(path)
        except OSError:
            return [], [], ""
        key = (path, status.st_size, status.st_mtime_ns)
        hit = _PARSED.get(key)
        if hit is None:
            hit = _PARSED[key] = _parse(_read_tail(path))
            if len(_PARSED) > PARSED_CACHE_SIZE:
                _PARSED.popitem(last=False)
        return hit

    read.parsed = parsed  # type: ignore[attr-defined]
    return read


def run_results(conn: Any, selector: Any, attempt_dir: Callable[[str, int], os.PathLike[str] | str]) -> RunResults:
    """Results of the jobs ``selector`` picks (a :class:`genobatch.run.Selector`, or a run id).

    ``conn`` is a store connection and ``attempt_dir`` maps (job id, attempt) to the attempt's
    directory (``Engine.attempt_dir``). The server's ``GET /genobatch/v1/runs/results`` answers
    with this; the web console and ``genobatch report`` read it from there.
    """
    from genobatch.run import Selector

    chosen = Selector.parse(run=selector) if isinstance(selector, str) else selector
    return collect(chosen.rows(conn), attempt_log_reader(attempt_dir))
