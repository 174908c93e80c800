"""Paging of small in-memory result lists (resources, not jobs: those page in SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from genobatch.api.errors import ClientException

T = TypeVar("T")


def page(items: Sequence[T], max_results: int | None, token: str | None, *, limit: int) -> tuple[list[T], str | None]:
    """Return one page and the token of the next (an offset; the lists are short)."""
    size = min(max_results or limit, limit)
    if size < 1:
        raise ClientException("maxResults must be at least 1")
    start = 0
    if token:
        if not token.isdigit():
            raise ClientException("nextToken is not valid")
        start = int(token)
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else None)


def paged_response(items: Sequence[T], request: dict, key: str, *, limit: int = 100) -> dict:
    """``{key: page}`` plus ``nextToken`` when more remain, from a request's maxResults/nextToken."""
    page_items, token = page(items, request.get("maxResults"), request.get("nextToken"), limit=limit)
    response: dict = {key: page_items}
    if token:
        response["nextToken"] = token
    return response
