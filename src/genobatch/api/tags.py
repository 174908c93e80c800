"""Tag operations: TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from sqlalchemy import select

from genobatch.api import limits
from genobatch.api.errors import ClientException
from genobatch.backends.registry import is_backend_tag
from genobatch.context import Context
from genobatch.store import catalog
from genobatch.store.schema import compute_environments, job_definitions, job_queues, jobs

_TABLES = {
    "compute-environment": compute_environments,
    "job-queue": job_queues,
    "job-definition": job_definitions,
}


def _require_resource(ctx: Context, arn: str) -> None:
    """``arn:aws:batch:<region>:<account>:<kind>/<name>`` must name an existing resource."""
    parts = arn.split(":", 5)
    kind, _, name = parts[5].partition("/") if len(parts) == 6 else ("", "", "")
    if kind == "job" and ":" in name:
        # API_TagResource: "ARNs for child jobs of array and multi-node parallel (MNP) jobs aren't supported."
        raise ClientException(f"resourceArn {arn} names an array child job, which cannot be tagged; tag its parent")
    if kind == "job":
        query = select(1).select_from(jobs).where(jobs.c.id == name)
    elif kind in _TABLES:
        table = _TABLES[kind]
        query = select(1).select_from(table).where(table.c.arn == arn)
    else:
        query = None
    if query is None or ctx.conn.execute(query).first() is None:
        raise ClientException(f"resourceArn {arn} does not name an existing resource")


def _refuse_backend_tags(arn: str, keys) -> None:
    """A compute environment's ``genobatch:`` tags choose and configure its backend at creation;
    like an environment's type, they cannot change afterwards (its jobs run there)."""
    if ":compute-environment/" not in arn:
        return
    fixed = sorted(key for key in keys if is_backend_tag(key))
    if fixed:
        raise ClientException(
            f"tags {', '.join(fixed)}: a compute environment's backend tags are set when it is created "
            "and cannot be changed; create a new compute environment instead"
        )


def tag_resource(ctx: Context, request: dict) -> dict:
    _require_resource(ctx, request["resourceArn"])
    _refuse_backend_tags(request["resourceArn"], request["tags"])
    merged = {**catalog.get_tags(ctx.conn, request["resourceArn"]), **request["tags"]}
    limits.check_tags("tags", merged)
    catalog.set_tags(ctx.conn, request["resourceArn"], request["tags"])
    return {}


def untag_resource(ctx: Context, request: dict) -> dict:
    _require_resource(ctx, request["resourceArn"])
    _refuse_backend_tags(request["resourceArn"], request["tagKeys"])
    catalog.remove_tags(ctx.conn, request["resourceArn"], request["tagKeys"])
    return {}


def list_tags_for_resource(ctx: Context, request: dict) -> dict:
    _require_resource(ctx, request["resourceArn"])
    return {"tags": catalog.get_tags(ctx.conn, request["resourceArn"])}
