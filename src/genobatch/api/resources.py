"""Checks shared by the compute environment and job queue operations."""

from __future__ import annotations

from genobatch.api.errors import ClientException
from genobatch.context import Context
from genobatch.store import catalog

#: Per kind: the field name in messages and the documented service limit.
LIMITS = {"compute-environment": ("computeEnvironment", 50), "job-queue": ("jobQueue", 50)}


def require(ctx: Context, kind: str, reference: str) -> dict:
    """The document named (or ARN'd) ``reference``; ClientException if there is none."""
    document = catalog.get_document(ctx.conn, kind, reference)
    if document is None:
        raise ClientException(f"{LIMITS[kind][0]} {reference} does not exist")
    return document


def check_new(ctx: Context, kind: str, name: str) -> None:
    """A new resource's name is free and the service limit is not reached."""
    field, limit = LIMITS[kind]
    if catalog.get_document(ctx.conn, kind, name) is not None:
        raise ClientException(f"Object already exists: {field} {name}")
    if len(catalog.list_documents(ctx.conn, kind)) >= limit:
        raise ClientException(f"Limit exceeded: at most {limit} of {field}")
