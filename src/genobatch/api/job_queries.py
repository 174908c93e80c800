"""Job read operations: DescribeJobs and ListJobs (answered from the store, off the engine thread)."""

from __future__ import annotations

import re

from genobatch.api.errors import ClientException
from genobatch.api.job_detail import job_detail, job_summary
from genobatch.api.resources import require
from genobatch.context import Context
from genobatch.store import jobs as job_rows

MAX_DESCRIBE = 100
MAX_LIST = 1000
MAX_LIST_FILTERED = 100
_EPOCH_MS = re.compile(r"[0-9]{1,18}")


def _job_arn_prefix(ctx: Context) -> str:
    return ctx.arn("job", "")


def describe_jobs(ctx: Context, request: dict) -> dict:
    ids = request["jobs"]
    if len(ids) > MAX_DESCRIBE:
        raise ClientException(f"jobs: at most {MAX_DESCRIBE} job ids per request")
    prefix = _job_arn_prefix(ctx)
    ids = [i[len(prefix) :] if i.startswith(prefix) else i for i in ids]
    rows = {row["id"]: row for row in job_rows.get_rows(ctx.conn, ids)}
    return {"jobs": [job_detail(rows[i], prefix) for i in dict.fromkeys(ids) if i in rows]}


def _filter_arguments(ctx: Context, filters: list[dict]) -> dict:
    """Translate ListJobs ``filters`` into store query arguments."""
    if len(filters) > 1:
        raise ClientException("filters: only one filter may be given")
    arguments: dict = {}
    for item in filters:
        name, values = item.get("name"), item.get("values", [])
        if len(values) != 1:
            raise ClientException(f"filters: {name} takes exactly one value")
        value = values[0]
        if name == "JOB_NAME":
            if value.endswith("*"):
                arguments["name_prefix"] = value[:-1]
            else:
                arguments["name_exact"] = value
        elif name == "JOB_DEFINITION":
            arguments["definition_like"] = _definition_pattern(ctx, value)
        elif name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
            # ASCII digits that fit the store's BIGINT ("²" passes isdigit, int() refuses it).
            if not _EPOCH_MS.fullmatch(value):
                raise ClientException(f"filters: {name} takes epoch milliseconds, got {value[:32]!r}")
            key = "created_before" if name == "BEFORE_CREATED_AT" else "created_after"
            arguments[key] = int(value)
        elif name == "SHARE_IDENTIFIER":
            arguments["share_identifier"] = value
        else:
            raise ClientException(f"filters: unknown filter {name!r}")
    return arguments


def _like_literal(text: str) -> str:
    """``text`` matched literally by a LIKE pattern with ``/`` as its escape character (the store's;
    not a backslash, which PostgreSQL and SQLite quote differently)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _definition_pattern(ctx: Context, value: str) -> str:
    """A LIKE pattern over definition ARNs for ``name``, ``name:rev``, ``name*`` or an ARN.

    Definition names may contain ``_``, a LIKE wildcard, so every literal part is escaped.
    """
    if value.startswith("arn:"):
        if "*" in value:
            raise ClientException("filters: JOB_DEFINITION does not support '*' in an ARN")
        return _like_literal(value)
    base = _like_literal(ctx.arn("job-definition", ""))
    if value.endswith("*"):
        return base + _like_literal(value[:-1]) + "%"
    if ":" in value:
        return base + _like_literal(value)
    return base + _like_literal(value) + ":%"


def list_jobs(ctx: Context, request: dict) -> dict:
    """Exactly one of jobQueue / arrayJobId; RUNNING only unless jobStatus or a filter says otherwise."""
    scopes = [key for key in ("jobQueue", "arrayJobId", "multiNodeJobId") if request.get(key)]
    if len(scopes) != 1:
        raise ClientException("Exactly one of jobQueue, arrayJobId or multiNodeJobId must be given")
    if scopes == ["multiNodeJobId"]:
        raise ClientException(
            "multiNodeJobId is not supported: genobatch runs no multi-node parallel jobs, so no job has nodes to list"
        )
    filters = request.get("filters", [])
    arguments = _filter_arguments(ctx, filters)
    status_applies = not filters or filters[0].get("name") == "SHARE_IDENTIFIER"
    if status_applies:
        arguments["statuses_wanted"] = [request.get("jobStatus", "RUNNING")]
    limit_cap = MAX_LIST_FILTERED if filters else MAX_LIST
    limit = request.get("maxResults") or limit_cap
    if not 1 <= limit <= limit_cap:
        raise ClientException(f"maxResults must be between 1 and {limit_cap}")
    if request.get("jobQueue"):
        arguments["queue"] = require(ctx, "job-queue", request["jobQueue"])["jobQueueName"]
        arguments["top_level"] = True  # array children are listed through arrayJobId only
    else:
        arguments["parent_id"] = request["arrayJobId"]
    try:
        rows, token = job_rows.list_rows(ctx.conn, after_token=request.get("nextToken"), limit=limit, **arguments)
    except ValueError as error:
        raise ClientException(str(error)) from None
    prefix = _job_arn_prefix(ctx)
    response: dict = {"jobSummaryList": [job_summary(row, prefix) for row in rows]}
    if token:
        response["nextToken"] = token
    return response
