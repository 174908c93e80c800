"""Opt-in per-operation request quotas, answered as AWS answers a throttled request.

AWS Batch limits calls per account and region (SubmitJob: 50 per second) and refuses the excess
with HTTP 429 ``TooManyRequestsException`` ("Too Many Requests"), which SDKs back off from and
retry. A genobatch server started with ``--api-rate-limit SubmitJob=50`` enforces the same quota,
so a client (or a genobatch server forwarding to this one through its ``aws-batch`` backend) can be
shown to respect it. Without the flag nothing is limited.

Each limited operation has a token bucket (refilled at the rate, holding at most one second of
tokens, as AWS's quotas allow short bursts). The check costs one lock and one clock read.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from genobatch.api.errors import ApiError

#: The message AWS Batch sends with a 429 (as SDK error reports show it).
THROTTLED_MESSAGE = "Too Many Requests"


class TooManyRequestsException(ApiError):
    """A request over its operation's quota (HTTP 429); SDKs treat the code as throttling."""

    status = 429
    code = "TooManyRequestsException"


class TokenBucket:
    """``rate`` operations per second on average, bursts of up to ``burst`` at once.

    ``take()`` never blocks: it says whether a token was available. ``delay()`` says how long until
    one will be, for a caller that paces itself instead of being refused.
    """

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of operations per second, not {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> bool:
        """Take one token if there is one."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def reserve(self) -> float:
        """Take one token now or in the future; return the seconds to wait before using it."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def parse_limits(text: str | None) -> dict[str, float]:
    """``"SubmitJob=50,DescribeJobs=20"`` -> ``{"SubmitJob": 50.0, "DescribeJobs": 20.0}``.

    Raises ValueError naming the bad part. Operation names are checked against the Batch model.
    """
    from genobatch.api.model import service_model

    if not text:
        return {}
    known = set(service_model("batch").operation_names)
    limits: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part.strip()!r} is not OPERATION=CALLS_PER_SECOND (e.g. SubmitJob=50)")
        if name not in known:
            raise ValueError(f"{name!r} is not an AWS Batch operation (e.g. SubmitJob, DescribeJobs)")
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"the rate of {name} must be a positive number of calls per second, not {value.strip()!r}")
        limits[name] = rate
    return limits


class RateLimits:
    """One token bucket per limited operation."""

    def __init__(self, limits: Mapping[str, float]) -> None:
        self._buckets = {name: TokenBucket(rate) for name, rate in limits.items()}

    def check(self, operation: str) -> None:
        """Raise :class:`TooManyRequestsException` if ``operation`` is over its quota right now."""
        bucket = self._buckets.get(operation)
        if bucket is not None and not bucket.take():
            raise TooManyRequestsException(THROTTLED_MESSAGE)
