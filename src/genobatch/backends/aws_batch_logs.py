"""Copying AWS Batch jobs' CloudWatch Logs into ``attempt_dir/output.log`` (for :mod:`aws_batch`).

A job's log is the stream ``logStreamName`` of the group ``/aws/batch/job``. Two ways to read it:

* **Batched, for attempts that ended before any of their log was copied** (the common case for
  short jobs): FilterLogEvents takes up to 100 streams per call, so one poll that sees many
  attempts end reads all their logs in a few calls instead of one call per attempt. The engine
  calls :meth:`LogCopier.prefetch` with the ended attempts of a poll, then :meth:`LogCopier.copy`
  per attempt writes what was fetched.
* **Forward, per stream** (GetLogEvents with ``startFromHead`` and ``nextForwardToken``) for a
  running attempt, every ``LOG_INTERVAL_S``, and for the rest of a log once part of it was copied.

Progress is kept next to the log in ``cloudwatch.token``: the forward token, or ``complete`` once
an ended attempt's log was copied whole. So a restart continues where the copy stopped and never
copies a line twice (a crash between writing lines and the token repeats those lines at worst).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

LOG_GROUP = "/aws/batch/job"
LOG_INTERVAL_S = 30.0  # how often a running attempt's log is copied (its end is always copied)
#: A page this full may have more behind it (CloudWatch answers at most 10,000 events or 1 MB); a
#: shorter page is the end for now, which saves the confirming call per attempt.
PAGE_EVENTS, PAGE_BYTES = 10_000, 900_000
EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message
FILTER_STREAMS = 100  # FilterLogEvents takes at most 100 stream names
TOKEN_FILE = "cloudwatch.token"
COMPLETE = "complete"

#: (operation, parameters) -> answer; raises ClientError/BotoCoreError. Throttling is retried inside.
Call = Callable[..., dict]


class LogCopier:
    """Brings remote jobs' output into their attempt directories (see the module docstring)."""

    def __init__(self, call: Call, unavailable: Callable[[Exception, str], Exception]) -> None:
        self._call = call
        self._unavailable = unavailable
        self._fetched: dict[str, list[str]] = {}  # handle -> every message of its ended stream
        self._due: dict[str, float] = {}  # handle -> when its running log is copied next

    def prefetch(self, ended: Mapping[str, str]) -> None:
        """Read the whole logs of ended attempts (handle -> stream) not yet copied, 100 streams a call.

        Best effort: an attempt left out is read per stream by :meth:`copy`.
        """
        todo = {handle: stream for handle, stream in ended.items() if handle not in self._due}
        handles = list(todo)
        for first in range(0, len(handles), FILTER_STREAMS):
            chunk = {todo[h]: h for h in handles[first : first + FILTER_STREAMS]}
            messages: dict[str, list[str]] = {stream: [] for stream in chunk}
            params: dict = {"logGroupName": LOG_GROUP, "logStreamNames": list(chunk)}
            try:
                while True:
                    page = self._call("filter_log_events", **params)
                    for event in page.get("events", []):
                        messages.setdefault(event["logStreamName"], []).append(event["message"])
                    if not page.get("nextToken"):
                        break
                    params["nextToken"] = page["nextToken"]
            except (ClientError, BotoCoreError):
                continue  # each of them is read on its own instead
            for stream, handle in chunk.items():
                self._fetched[handle] = messages[stream]

    def copy(self, handle: str, stream: str, ended: bool, attempt_dir: str) -> None:
        """Append the attempt's new log lines to ``attempt_dir/output.log``."""
        now = time.monotonic()
        if not ended and now < self._due.get(handle, 0.0):
            return
        self._due[handle] = now + LOG_INTERVAL_S
        fetched = self._fetched.pop(handle, None)
        if ended:
            self._due.pop(handle, None)
        token_path = os.path.join(attempt_dir, TOKEN_FILE)
        try:
            with open(token_path, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        except FileNotFoundError:
            token = None
        if token == COMPLETE:
            return
        if fetched is not None and token is None and ended:
            if fetched:  # an empty log needs no mark: copying it again copies nothing
                _append(attempt_dir, fetched)
                _write_atomically(token_path, COMPLETE)
            return
        self._forward(stream, token, token_path, attempt_dir)

    def _forward(self, stream: str, token: str | None, token_path: str, attempt_dir: str) -> None:
        while True:
            params = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if token:
                params["nextToken"] = token
            try:
                page = self._call("get_log_events", **params)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return  # no output yet
                raise self._unavailable(error, "GetLogEvents") from None
            except BotoCoreError as error:
                raise self._unavailable(error, "GetLogEvents") from None
            events = page.get("events", [])
            _append(attempt_dir, [event["message"] for event in events])
            following = page.get("nextForwardToken")
            if not following or following == token:
                return
            token = following
            _write_atomically(token_path, token)
            size = sum(len(event["message"]) + EVENT_OVERHEAD for event in events)
            if len(events) < PAGE_EVENTS and size < PAGE_BYTES:
                return

    def forget(self, handle: str) -> None:
        """Drop what is kept for an attempt this engine no longer follows."""
        self._fetched.pop(handle, None)
        self._due.pop(handle, None)


def _append(attempt_dir: str, messages: list[str]) -> None:
    if messages:
        os.makedirs(attempt_dir, exist_ok=True)
        with open(os.path.join(attempt_dir, "output.log"), "a", encoding="utf-8") as out:
            out.writelines(message + "\n" for message in messages)


def _write_atomically(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
