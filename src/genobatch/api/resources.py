"""Checks shared by the compute environment and job queue operations."""

from __future__ import annotations

import re

from genobatch.api.errors import ClientException
from genobatch.context import Context
from genobatch.store import catalog

#: Per kind: the field name in messages and the documented service limit.
LIMITS = {"compute-environment": ("computeEnvironment", 50), "job-queue": ("jobQueue", 50)}
#: API_CreateComputeEnvironment / API_CreateJobQueue: "up to 128 characters ... uppercase and
#: lowercase letters, numbers, hyphens (-), and underscores (_)". The name ends up in an ARN, so a
#: ``/`` or ``:`` would make that ARN ambiguous.
RESOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_DESCRIBE = 100


def require(ctx: Context, kind: str, reference: str) -> dict:
    """The document named (or ARN'd) ``reference``; ClientException if there is none."""
    document = catalog.get_document(ctx.conn, kind, reference)
    if document is None:
        raise ClientException(f"{LIMITS[kind][0]} {reference} does not exist")
    return document


def check_reference_count(field: str, references: list[str]) -> None:
    """Describe operations take "a list of up to 100" names or ARNs (API Reference)."""
    if len(references) > MAX_DESCRIBE:
        raise ClientException(f"{field}: at most {MAX_DESCRIBE} names or ARNs per request, got {len(references)}")


def check_new(ctx: Context, kind: str, name: str) -> None:
    """A new resource's name is well formed and free, and the service limit is not reached."""
    field, limit = LIMITS[kind]
    if not RESOURCE_NAME.fullmatch(name):
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise ClientException(
            f"{field}Name {shown!r} is invalid: it must be 1-128 letters, numbers, hyphens and underscores"
        )
    if catalog.get_document(ctx.conn, kind, name) is not None:
        raise ClientException(f"Object already exists: {field} {name}")
    if len(catalog.list_documents(ctx.conn, kind)) >= limit:
        raise ClientException(f"Limit exceeded: at most {limit} of {field}")
