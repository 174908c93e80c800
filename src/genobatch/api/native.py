"""genobatch's native read API, for what AWS Batch keeps elsewhere (CloudWatch logs, host details).

* ``GET /genobatch/v1/jobs/{jobId}`` - per attempt: compute environment, pinned CPUs/GPUs, where
  and how it ran (host process or container runtime, pid, hostname, image), measured usage.
* ``GET /genobatch/v1/jobs/{jobId}/logs?attempt=N&offset=K`` - the attempt's combined
  stdout/stderr from byte ``offset``; ``complete`` says whether the attempt has ended, and
  ``removed`` says when the retention policy has deleted the log (see genobatch.retention).
* ``GET /genobatch/v1/runs?run=ID | tag=KEY=VALUE | queue=NAME [&trace=1]`` - progress (jobs per
  status, samples done) and cost (attributed and billed, per compute environment, job, sample and
  queue) of a group of jobs; with ``trace=1`` also one trace record per attempt.
* ``GET /genobatch/v1/runs/results?run=ID | tag=KEY=VALUE | queue=NAME`` - what the jobs published
  (metrics per sample, :mod:`genobatch.report.results`) and the failed jobs with reason and log tail.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from starlette.requests import Request

from genobatch.api.errors import ClientException, UnknownOperationException
from genobatch.api.text import refuse_unstorable_text
from genobatch.backends.host import LOG_FILE, read_log
from genobatch.cost.catalog import Catalog, CatalogError
from genobatch.engine import Engine, now_ms
from genobatch.report.results import run_results
from genobatch.retention import removal_note
from genobatch.run import Selector, price_catalog, summarize
from genobatch.store import jobs as job_rows

LOG_CHUNK = 1 << 20


def _row(engine: Engine, job_id: str) -> dict:
    with engine.database.connect() as conn:
        rows = job_rows.get_rows(conn, [job_id])
    if not rows:
        raise ClientException(f"jobId {job_id} does not exist")
    return rows[0]


def job_attempts(engine: Engine, job_id: str) -> dict:
    row = _row(engine, job_id)
    attempts = []
    for attempt in row["state"].get("attempts", []):
        info = {k: v for k, v in attempt.get("info", {}).items() if k != "released"}
        attempts.append(
            {
                "attempt": attempt["number"],
                "computeEnvironment": attempt["compute_environment"],
                "cpus": attempt["cpus"],
                "gpus": attempt["gpus"],
                "placedAt": attempt["placed_at"],
                "startedAt": attempt.get("started_at"),
                "stoppedAt": attempt.get("stopped_at"),
                "exitCode": attempt.get("exit_code"),
                "timedOut": attempt.get("timed_out", False),
                "execution": info,
                "usage": attempt.get("usage", {}),
                "attemptDir": str(engine.attempt_dir(job_id, attempt["number"])),
            }
        )
    image = (row["spec"] or {}).get("container", {}).get("image")
    return {"jobId": job_id, "status": row["status"], "image": image, "attempts": attempts}


def job_logs(engine: Engine, job_id: str, attempt: int | None, offset: int) -> dict:
    row = _row(engine, job_id)
    attempts = row["state"].get("attempts", [])
    if not attempts:
        return {"jobId": job_id, "attempt": None, "offset": 0, "nextOffset": 0, "data": "", "complete": False}
    number = attempt or attempts[-1]["number"]
    if not 1 <= number <= len(attempts):
        raise ClientException(f"attempt must be between 1 and {len(attempts)}")
    attempt_dir = engine.attempt_dir(job_id, number)
    data, next_offset = read_log(str(attempt_dir), offset, LOG_CHUNK)
    complete = attempts[number - 1].get("stopped_at") is not None
    removed = (
        None
        if data or (attempt_dir / LOG_FILE).exists()
        else removal_note(engine.settings.data_dir, row["state"], number)
    )
    if removed:
        # Say so rather than serve an empty log: the log existed and the retention policy deleted it.
        return {
            "jobId": job_id,
            "attempt": number,
            "offset": offset,
            "nextOffset": offset,
            "data": "",
            "complete": True,
            "removed": removed,
        }
    return {
        "jobId": job_id,
        "attempt": number,
        "offset": offset,
        "nextOffset": next_offset,
        "data": data.decode("utf-8", errors="replace"),
        "complete": complete and len(data) < LOG_CHUNK,
    }


@cache
def _catalog(data_dir: Path) -> Catalog:
    return price_catalog(data_dir)


def _selector(request: Request) -> Selector:
    params = request.query_params
    try:
        return Selector.parse(params.get("run"), params.get("tag"), params.get("queue"))
    except ValueError as error:
        raise ClientException(f"runs: {error}") from None


def results(engine: Engine, request: Request) -> dict:
    selector = _selector(request)
    with engine.database.connect() as conn:
        return run_results(conn, selector, engine.attempt_dir).to_document()


def run_summary(engine: Engine, request: Request) -> dict:
    params = request.query_params
    selector = _selector(request)
    inventory = engine.backend.inventory()
    host = (len(inventory.cpus), inventory.memory_mib, len(inventory.gpus))
    try:
        with engine.database.connect() as conn:
            return summarize(
                conn,
                selector,
                _catalog(engine.settings.data_dir),
                engine.settings.region,
                host,
                now_ms(),
                with_trace=params.get("trace") in ("1", "true"),
            )
    except (CatalogError, LookupError, ValueError) as error:
        raise ClientException(f"cost: {error}") from None


#: A query integer: ASCII digits only (``str.isdigit`` also passes "²", which ``int`` refuses), and
#: few enough of them to be a file offset (``seek`` overflows past 2**63 - 1).
_QUERY_INT = re.compile(r"[0-9]{1,19}")
_MAX_QUERY_INT = 2**63 - 1


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not _QUERY_INT.fullmatch(value) or int(value) > _MAX_QUERY_INT:
        raise ClientException(f"{name} must be an integer between 0 and {_MAX_QUERY_INT}, got {value[:32]!r}")
    return int(value)


def dispatch(engine: Engine, request: Request) -> dict:
    """Route a native GET request."""
    refuse_unstorable_text({"path": request.path_params["path"], **request.query_params})
    parts = request.path_params["path"].split("/")
    if parts == ["runs"]:
        return run_summary(engine, request)
    if parts == ["runs", "results"]:
        return results(engine, request)
    if len(parts) == 2 and parts[0] == "jobs":
        return job_attempts(engine, parts[1])
    if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "logs":
        return job_logs(engine, parts[1], _int_param(request, "attempt"), _int_param(request, "offset") or 0)
    raise UnknownOperationException(f"No native endpoint at {request.url.path}")
