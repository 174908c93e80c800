"""The engine's cache of the catalog documents every SubmitJob reads: its job queue and its job
definition.

Reading both from the store was half of the engine thread's time per SubmitJob (two queries and
their JSON decoding, ~0.85 of ~1.7 ms per call in ``bench/submit_latency.py --clients 8``), while
they change only through a few rare operations (Create/Update/DeleteJobQueue,
Register/DeregisterJobDefinition, ...).

Invalidation is exact and asks nothing of the writers: the cache listens on the database for
INSERT, UPDATE and DELETE statements on the catalog tables, whoever runs them, and drops every
entry at once (catalog writes are rare; submits are many). It sees SQLAlchemy Core statements,
which is how the store writes (only the schema migrations, run before any engine starts, send SQL
text):

* a lookup inside a transaction that has itself written the catalog is answered from the store
  and not kept: it sees that transaction's uncommitted rows, which a rollback of the transaction
  or of one call's savepoint would withdraw;
* when such a transaction ends (commit or rollback) every entry is dropped again, so nothing read
  from a snapshot older than that commit outlives it;
* a lookup that overlapped an invalidation (another thread's write) is not kept either.

Entries hold a document's JSON text and every hit decodes a fresh copy: a caller that changes
what it got (a job's spec is built from its definition) cannot change the cache. Only documents
that exist are kept, at most ``limit`` per kind, so references to nothing cannot grow it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Connection, Delete, Insert, Update, event
from sqlalchemy import Engine as Database

from genobatch.store import catalog
from genobatch.store.schema import compute_environments, job_definitions, job_queues

#: Tables whose writes invalidate the cache. Compute environments are not cached, but a queue's
#: document names them, so their writes count too (cheap insurance: they are as rare).
CATALOG_TABLES = frozenset({job_queues.name, job_definitions.name, compute_environments.name})
_WROTE_CATALOG = "genobatch.catalog_written"  # key in Connection.info while its transaction is open
DEFAULT_LIMIT = 1024

__all__ = ["CatalogCache", "find_definition", "find_job_queue"]


class CatalogCache:
    """Job queue and job definition documents by the reference a request used (name or ARN)."""

    def __init__(self, database: Database, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._entries: dict[tuple[str, str], str] = {}
        self._generation = 0  # bumped by every invalidation; a lookup that saw it change keeps nothing
        self.hits = 0
        self.misses = 0
        event.listen(database, "after_execute", self._after_execute)
        event.listen(database, "commit", self._transaction_ended)
        event.listen(database, "rollback", self._transaction_ended)

    def job_queue(self, conn: Connection, reference: str) -> dict | None:
        """The job queue named (or ARN'd) ``reference``, or None."""
        return self._lookup(conn, "job-queue", reference, lambda: catalog.get_document(conn, "job-queue", reference))

    def job_definition(self, conn: Connection, reference: str) -> dict | None:
        """:func:`genobatch.store.catalog.find_definition`, cached."""
        return self._lookup(conn, "job-definition", reference, lambda: catalog.find_definition(conn, reference))

    def invalidate(self) -> None:
        """Drop every entry."""
        self._generation += 1
        self._entries = {}

    def _lookup(self, conn: Connection, kind: str, reference: str, read: Callable[[], dict | None]) -> dict | None:
        key = (kind, reference)
        text = self._entries.get(key)
        if text is not None:
            self.hits += 1
            return json.loads(text)
        self.misses += 1
        generation = self._generation
        document = read()
        if document is None or conn.info.get(_WROTE_CATALOG):
            return document
        text = json.dumps(document)
        entries = self._entries
        if generation == self._generation:
            if len(entries) >= self.limit:
                entries.clear()
            entries[key] = text
        return document

    # ------------------------------------------------------------------ database events
    def _after_execute(self, conn: Connection, statement: object, *_args: object) -> None:
        if isinstance(statement, Insert | Update | Delete) and statement.table.name in CATALOG_TABLES:
            conn.info[_WROTE_CATALOG] = True
            self.invalidate()

    def _transaction_ended(self, conn: Connection) -> None:
        if conn.info.pop(_WROTE_CATALOG, False):
            self.invalidate()


def find_job_queue(conn: Connection, cache: CatalogCache | None, reference: str) -> dict | None:
    """The job queue ``reference`` names, through ``cache`` when there is one."""
    if cache is None:
        return catalog.get_document(conn, "job-queue", reference)
    return cache.job_queue(conn, reference)


def find_definition(conn: Connection, cache: CatalogCache | None, reference: str) -> dict | None:
    """The job definition ``reference`` names (see :func:`genobatch.store.catalog.find_definition`),
    through ``cache`` when there is one."""
    if cache is None:
        return catalog.find_definition(conn, reference)
    return cache.job_definition(conn, reference)
