"""Formatting of instants, durations, sizes and money, for files (exact) and for people (short)."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def utc(epoch_ms: int) -> datetime:
    """An epoch-milliseconds instant as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def iso_time(epoch_ms: int | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, e.g. ``2024-05-01T12:00:00.250Z``; None stays None."""
    if epoch_ms is None:
        return None
    return utc(epoch_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short_time(epoch_ms: int | None) -> str:
    """``2024-05-01 12:00:00`` (UTC) for tables; a dash when unknown."""
    return "–" if epoch_ms is None else utc(epoch_ms).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """Nextflow's style: ``1h 2m``, ``3m 4s``, ``5.2s``, ``120ms``; a dash when unknown."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def size(n: float | None) -> str:
    """Binary units with one decimal: ``512 B``, ``1.5 KiB``, ``3.2 GiB``; a dash when unknown."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def money(usd: float | None) -> str:
    """Dollars as people write them: cents from a dollar up (``$12.30``), three significant digits below
    (``$0.0123``, ``$0.000412``: per-job costs are fractions of a cent and must not read as ``$0.0000``),
    ``$0`` for exactly nothing; a dash when unknown."""
    if usd is None or math.isnan(usd):
        return "–"
    if usd == 0:
        return "$0"
    sign = "-" if usd < 0 else ""
    amount = abs(usd)
    if amount >= 1:
        return f"{sign}${amount:,.2f}"
    decimals = min(12, max(2, 2 - math.floor(math.log10(amount))))
    digits = f"{amount:.{decimals}f}".rstrip("0")  # 0.500 -> 0.5, then back to cents: 0.50
    whole, _, fraction = digits.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def money_format(usd_values: list[float]) -> str:
    """An Excel number format for a column of dollar amounts, with enough decimals that its smallest non-zero
    amount shows three significant digits (``"$"#,##0.00`` for dollars, ``"$"#,##0.000000`` for micro-dollars)."""
    smallest = min((abs(v) for v in usd_values if v), default=1.0)
    decimals = 2 if smallest >= 1 else min(12, max(2, 2 - math.floor(math.log10(smallest))))
    return '"$"#,##0.' + "0" * decimals


def percent(fraction: float | None, digits: int = 0) -> str:
    """A fraction as a percentage; a dash when unknown. Never ``-0%``: a share that rounds to zero is ``0%``."""
    if fraction is None or math.isnan(fraction):
        return "–"
    text = f"{fraction * 100:.{digits}f}%"
    return text[1:] if text.startswith("-") and not any(ch in "123456789" for ch in text) else text
