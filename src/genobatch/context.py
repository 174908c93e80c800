"""What an API operation handler gets: a database connection, the clock reading and, for writes,
the scheduler. Handlers are plain functions ``handler(ctx, request) -> response``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection

from genobatch.catalog_cache import CatalogCache
from genobatch.config import Settings
from genobatch.core.action import Action
from genobatch.core.job import Job
from genobatch.core.scheduler import Scheduler

Handler = TypeVar("Handler", bound=Callable)


def refuses_before_writing(handler: Handler) -> Handler:
    """Mark a write handler that raises every ``ApiError`` before its first write to the store,
    so the engine runs it without a savepoint of its own: a refusal has nothing to roll back.

    Only for handlers whose writes are all at their end; one that could refuse after writing
    must keep the savepoint, or its refused request would leave rows behind.
    """
    handler.refuses_before_writing = True  # type: ignore[attr-defined]
    return handler


@dataclass
class Context:
    conn: Connection
    settings: Settings
    now: int  # epoch ms, read once per engine batch
    scheduler: Scheduler | None = None  # None for read-only operations
    allocate_seq: Callable[[int], int] | None = None  # reserves submission sequence numbers
    # New job rows to insert with this batch: (job, definition ARN, share identifier, spec | None).
    new_jobs: list[tuple[Job, str, str | None, dict | None]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    catalog: CatalogCache | None = None  # the engine's queue and definition cache (engine thread only)

    def arn(self, kind: str, name: str) -> str:
        """``arn:aws:batch:<region>:<account>:<kind>/<name>``."""
        return f"arn:aws:batch:{self.settings.region}:{self.settings.account_id}:{kind}/{name}"

    @property
    def writable(self) -> Scheduler:
        """The scheduler; only write operations (run on the engine thread) may use it."""
        if self.scheduler is None:
            raise RuntimeError("write operation run outside the engine thread")
        return self.scheduler
