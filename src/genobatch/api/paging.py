"""Paging of small in-memory result lists (resources, not jobs: those page in SQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from genobatch.api.errors import ClientException

T = TypeVar("T")

#: A token this module issued: an offset, in ASCII digits. ``str.isdigit`` would also pass "²" or
#: "٣", which ``int`` then refuses; the length bound keeps ``int`` cheap and the offset sane.
_OFFSET_TOKEN = re.compile(r"[0-9]{1,9}")


def page_size(max_results: int | None, limit: int) -> int:
    """The page size a request asks for: ``maxResults`` (absent or 0: ``limit``) within 1..``limit``.

    The Describe operations document "This value can be between 1 and 100"; out of range is the
    caller's error, not something to clip silently.
    """
    size = max_results or limit
    if not 1 <= size <= limit:
        raise ClientException(f"maxResults must be between 1 and {limit}, got {max_results}")
    return size


def page(items: Sequence[T], max_results: int | None, token: str | None, *, limit: int) -> tuple[list[T], str | None]:
    """Return one page and the token of the next (an offset; the lists are short)."""
    size = page_size(max_results, limit)
    start = 0
    if token:
        if not _OFFSET_TOKEN.fullmatch(token):
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
