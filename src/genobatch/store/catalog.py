"""Resource documents: compute environments, job queues, job definitions and tags."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Table, delete, func, or_, select, update

from genobatch.store.schema import compute_environments, job_definitions, job_queues, tags

KINDS: dict[str, Table] = {"compute-environment": compute_environments, "job-queue": job_queues}


def get_document(conn: Connection, kind: str, name_or_arn: str) -> dict | None:
    """A compute environment or job queue by name or ARN."""
    table = KINDS[kind]
    column = table.c.arn if name_or_arn.startswith("arn:") else table.c.name
    return conn.execute(select(table.c.document).where(column == name_or_arn)).scalar()


def list_documents(conn: Connection, kind: str, names_or_arns: Sequence[str] = ()) -> list[dict]:
    """All documents of ``kind`` (or those named), oldest first."""
    table = KINDS[kind]
    query = select(table.c.document).order_by(table.c.created_at, table.c.name)
    if names_or_arns:
        names = [n for n in names_or_arns if not n.startswith("arn:")]
        arns = [n for n in names_or_arns if n.startswith("arn:")]
        query = query.where(table.c.name.in_(names) | table.c.arn.in_(arns))
    return list(conn.execute(query).scalars())


def put_document(conn: Connection, kind: str, document: Mapping, created_at: int, *, new: bool) -> None:
    table = KINDS[kind]
    name_key = "computeEnvironmentName" if kind == "compute-environment" else "jobQueueName"
    arn_key = "computeEnvironmentArn" if kind == "compute-environment" else "jobQueueArn"
    if new:
        conn.execute(
            table.insert().values(
                name=document[name_key], arn=document[arn_key], created_at=created_at, document=dict(document)
            )
        )
    else:
        conn.execute(update(table).where(table.c.name == document[name_key]).values(document=dict(document)))


def delete_document(conn: Connection, kind: str, name: str) -> None:
    table = KINDS[kind]
    conn.execute(delete(table).where(table.c.name == name))


# ----------------------------------------------------------------------- job definitions
def next_revision(conn: Connection, name: str) -> int:
    latest = select(func.max(job_definitions.c.revision)).where(job_definitions.c.name == name)
    return (conn.execute(latest).scalar() or 0) + 1


def insert_definition(conn: Connection, document: Mapping) -> None:
    conn.execute(
        job_definitions.insert().values(
            arn=document["jobDefinitionArn"],
            name=document["jobDefinitionName"],
            revision=document["revision"],
            status=document["status"],
            document=dict(document),
        )
    )


#: Revisions are the model's Integer (32-bit) and written in ASCII digits. ``str.isdigit`` alone
#: would pass "²", which ``int`` refuses, and any number of digits, which the database refuses.
_REVISION = re.compile(r"[0-9]{1,10}")
_MAX_REVISION = 2**31 - 1


def parse_revision(text: str) -> int | None:
    """The revision number ``text`` spells, or None if it is not one (so no definition has it)."""
    if not _REVISION.fullmatch(text):
        return None
    number = int(text)
    return number if number <= _MAX_REVISION else None


def find_definition(conn: Connection, reference: str) -> dict | None:
    """Resolve ``name``, ``name:revision`` or an ARN; a bare name means the latest ACTIVE revision."""
    t = job_definitions
    if reference.startswith("arn:"):
        return conn.execute(select(t.c.document).where(t.c.arn == reference)).scalar()
    name, _, revision = reference.partition(":")
    if revision:
        number = parse_revision(revision)
        if number is None:
            return None
        query = select(t.c.document).where(t.c.name == name, t.c.revision == number)
        return conn.execute(query).scalar()
    query = select(t.c.document).where(t.c.name == name, t.c.status == "ACTIVE").order_by(t.c.revision.desc()).limit(1)
    return conn.execute(query).scalar()


def set_definition_status(conn: Connection, arn: str, document: Mapping) -> None:
    t = job_definitions
    conn.execute(update(t).where(t.c.arn == arn).values(status=document["status"], document=dict(document)))


def query_definitions(
    conn: Connection,
    *,
    arns: Sequence[str] = (),
    name_revisions: Sequence[tuple[str, int | None]] = (),
    name: str | None = None,
    status: str | None = None,
    after_arn: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """DescribeJobDefinitions' filters, ordered by name then revision, keyset-paged by ARN order."""
    t = job_definitions
    conditions = []
    if arns or name_revisions:
        # Whole names and ARNs each go into one IN; only name:revision pairs need a term each.
        # Callers bound the references (the API takes 100), so the OR stays far below SQLite's
        # expression depth limit (1000) and PostgreSQL's parameter limit.
        names = sorted({def_name for def_name, revision in name_revisions if revision is None})
        alternatives = [t.c.arn.in_(list(arns))] if arns else []
        if names:
            alternatives.append(t.c.name.in_(names))
        alternatives.extend(
            (t.c.name == def_name) & (t.c.revision == revision)
            for def_name, revision in name_revisions
            if revision is not None
        )
        conditions.append(or_(*alternatives))
    if name is not None:
        conditions.append(t.c.name == name)
    if status is not None:
        conditions.append(t.c.status == status)
    if after_arn is not None:
        conditions.append(t.c.arn > after_arn)
    query = select(t.c.document).where(*conditions).order_by(t.c.arn).limit(limit + 1)
    return list(conn.execute(query).scalars())


# ----------------------------------------------------------------------- tags
def get_tags(conn: Connection, arn: str) -> dict[str, str]:
    rows = conn.execute(select(tags.c.key, tags.c.value).where(tags.c.resource_arn == arn))
    return {row.key: row.value for row in rows}


def set_tags(conn: Connection, arn: str, values: Mapping[str, str]) -> None:
    if not values:
        return
    conn.execute(delete(tags).where(tags.c.resource_arn == arn, tags.c.key.in_(list(values))))
    conn.execute(tags.insert(), [{"resource_arn": arn, "key": k, "value": v} for k, v in values.items()])


def insert_tags(conn: Connection, arn: str, values: Mapping[str, str]) -> None:
    """Tags of a resource that has none yet (a new job): no delete of old values first."""
    if values:
        conn.execute(tags.insert(), [{"resource_arn": arn, "key": k, "value": v} for k, v in values.items()])


def remove_tags(conn: Connection, arn: str, keys: Sequence[str]) -> None:
    conn.execute(delete(tags).where(tags.c.resource_arn == arn, tags.c.key.in_(list(keys))))
