"""Metrics from a tool's log: dorado's and guppy's end-of-run lines, or a user's regex.

Every parser returns ``dict[str, float]`` with normalised names, so aggregation never needs to know
which tool printed what:

dorado (every version's end-of-run summary):

* ``finished_ms`` - ``> Finished in (ms): 663278``
* ``reads`` - ``> Simplex reads basecalled: 51828``, or ``> Reads basecalled: 51828`` (older)
* ``reads_filtered`` - ``> Simplex reads filtered: 176``, or ``> Reads filtered: 176`` (older)
* ``duplex_reads``, ``duplex_reads_filtered``, ``duplex_rate_pct`` - ``> Duplex reads basecalled: N``,
  ``> Duplex reads filtered: N``, ``> Duplex rate: 41.2%``
* ``samples_per_s`` - ``> Basecalled @ Samples/s: 3.741861e+06`` (simplex)
* ``bases_per_s`` - ``> Basecalled @ Bases/s: 1.2e+06`` (duplex)
* ``reads_demuxed``, ``classifications_per_s`` - ``> 96 reads demuxed @ classifications/s: 1.5e+03``

guppy:

* ``caller_time_ms`` - ``Caller time: 527764 ms``
* ``samples_called`` - ``Samples called: 3924332994``
* ``samples_per_s`` - ``samples/s: 7.43577e+06``
* ``init_time_ms`` - ``Init time: 1348 ms``

Each figure is searched for anywhere in a line, so log prefixes (``[2024-01-01 10:00:00.000]
[info]``, a container runtime's timestamp) are tolerated, and guppy's figures are found whether it
prints them on one line (``Caller time: N ms, Samples called: N, samples/s: F``, as it does) or on
separate lines. When a figure occurs more than once (a retried attempt appending to one log), the
**last** occurrence wins: it is the summary of the attempt that finished.

Dorado's samples/s clock starts after the model is loaded, so it is a different figure from work
divided by wall-clock time; aggregation keeps the two apart (see :mod:`.aggregate`).

A parser that finds nothing raises :class:`NoMetricsFound` naming what it looked for and showing the
log's last lines - the seed's dorado regex (``selected batchsize``) silently matched nothing on newer
dorado versions and its figures became empty; here that is an error the runner reports.

A user parser (:class:`RegexParser`) takes one regex: the value is the group named after the metric,
else the group named ``value``, else the first group; thousands separators (``1,234``) are dropped
before conversion to float. The regex is applied with ``re.MULTILINE`` (``^``/``$`` match at line
boundaries).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

BuiltinParser = Literal["dorado", "guppy"]
BUILTIN_PARSERS: tuple[BuiltinParser, ...] = ("dorado", "guppy")

# A number as tools print it: integer, decimal, scientific (3.741861e+06), optional sign.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_N = rf"(?P<value>{_NUMBER})"

# Case-sensitive on purpose: "Reads basecalled" (dorado < 0.4) must not match the "reads basecalled"
# inside "Duplex reads basecalled", and guppy's lower-case "samples/s:" must not be read as dorado's.
_DORADO: dict[str, re.Pattern[str]] = {
    "finished_ms": re.compile(rf"Finished in \(ms\):\s*{_N}"),
    "reads": re.compile(rf"(?:Simplex reads|Reads) basecalled:\s*{_N}"),
    "reads_filtered": re.compile(rf"(?:Simplex reads|Reads) filtered:\s*{_N}"),
    "duplex_reads": re.compile(rf"Duplex reads basecalled:\s*{_N}"),
    "duplex_reads_filtered": re.compile(rf"Duplex reads filtered:\s*{_N}"),
    "duplex_rate_pct": re.compile(rf"Duplex rate:\s*{_N}\s*%"),
    # The debug line "Including Padding @ Samples/s" counts padding: not the basecalling rate.
    "samples_per_s": re.compile(rf"(?<!Padding @ )Samples/s:\s*{_N}"),
    "bases_per_s": re.compile(rf"Basecalled @ Bases/s:\s*{_N}"),
    "reads_demuxed": re.compile(rf"(?P<value>\d+) reads demuxed @ classifications/s:\s*{_NUMBER}"),
    "classifications_per_s": re.compile(rf"reads demuxed @ classifications/s:\s*{_N}"),
}

_GUPPY: dict[str, re.Pattern[str]] = {
    "caller_time_ms": re.compile(rf"Caller time:\s*{_N}\s*ms"),
    "samples_called": re.compile(rf"Samples called:\s*{_N}"),
    "samples_per_s": re.compile(rf"samples/s:\s*{_N}"),
    "init_time_ms": re.compile(rf"Init time:\s*{_N}\s*ms"),
}

_BUILTIN: dict[str, dict[str, re.Pattern[str]]] = {"dorado": _DORADO, "guppy": _GUPPY}

#: Rates a tool reports about itself, and their units, in order of preference.
RATE_UNITS: dict[str, str] = {"samples_per_s": "samples/s", "bases_per_s": "bases/s"}

#: How many trailing log lines a :class:`NoMetricsFound` message shows.
TAIL_LINES = 5


class ParserError(ValueError):
    """A log could not be turned into metrics."""


class NoMetricsFound(ParserError):
    """The parser matched nothing: the tool failed early, or its log format changed."""


@dataclass(frozen=True)
class RegexParser:
    """A user's parser: one regex, one metric, its unit (``unit`` ending in ``/s`` marks a rate)."""

    regex: str
    metric: str
    unit: str | None = None

    def compiled(self) -> re.Pattern[str]:
        """The compiled regex; :class:`ParserError` if it does not compile or has no group."""
        try:
            pattern = re.compile(self.regex, re.MULTILINE)
        except re.error as error:
            raise ParserError(f"regex {self.regex!r} does not compile: {error}") from None
        if pattern.groups == 0:
            raise ParserError(f"regex {self.regex!r} has no group: put the number in (...) or (?P<value>...)")
        return pattern

    @property
    def is_rate(self) -> bool:
        return self.metric.endswith("_per_s") or (self.unit or "").endswith("/s")


ParserSpec = BuiltinParser | RegexParser


def parser_spec(value: object) -> ParserSpec:
    """A parser from its plan form - ``dorado``, ``guppy`` or ``{regex, metric, unit}`` - checked.

    Raises :class:`ParserError` (a :class:`ValueError`) saying what is wrong: an unknown name, a
    missing ``regex`` or ``metric``, a regex that does not compile or has no group.
    """
    if isinstance(value, RegexParser) or value in BUILTIN_PARSERS:
        return value  # type: ignore[return-value]
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"regex", "metric", "unit"})
        if unknown:
            raise ParserError(f"unknown key(s) {', '.join(unknown)}: a regex parser has regex, metric and unit")
        if not value.get("regex") or not value.get("metric"):
            raise ParserError("a regex parser needs both regex and metric")
        unit = value.get("unit")
        parser = RegexParser(str(value["regex"]), str(value["metric"]), None if unit is None else str(unit))
        parser.compiled()  # fail at plan load, not after the first GPU hour
        return parser
    raise ParserError(f"unknown parser {value!r}: use {', '.join(BUILTIN_PARSERS)} or {{regex, metric, unit}}")


def metric_names(spec: ParserSpec) -> frozenset[str]:
    """The names a parser can produce (what a plan's ``work: {metric: NAME}`` may refer to)."""
    if isinstance(spec, RegexParser):
        return frozenset({spec.metric})
    return frozenset(_builtin(spec))


def rate_metrics(spec: ParserSpec | None) -> list[tuple[str, str]]:
    """``(metric, unit)`` pairs a parser may report as the tool's own rate, most preferred first.

    Dorado prints samples/s for simplex and bases/s for duplex runs, so both are candidates and the
    metrics of the run decide which one is there.
    """
    if spec is None:
        return []
    if isinstance(spec, RegexParser):
        return [(spec.metric, spec.unit or spec.metric)] if spec.is_rate else []
    names = _builtin(spec)
    return [(name, unit) for name, unit in RATE_UNITS.items() if name in names]


def _builtin(name: str) -> dict[str, re.Pattern[str]]:
    try:
        return _BUILTIN[name]
    except KeyError:
        raise ParserError(f"unknown parser {name!r}: use one of {', '.join(BUILTIN_PARSERS)} or a regex") from None


def _to_float(text: str, what: str) -> float:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        raise ParserError(f"{what}: {text!r} is not a number") from None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    match = None
    for match in pattern.finditer(text):  # noqa: B007 - keep the last one: the attempt that finished
        pass
    return match


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "the log is empty"
    shown = "\n".join(f"  | {line[:200]}" for line in lines[-TAIL_LINES:])
    return f"its last {min(TAIL_LINES, len(lines))} line(s):\n{shown}"


def _scan(patterns: Mapping[str, re.Pattern[str]], text: str, parser: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, pattern in patterns.items():
        match = _last(pattern, text)
        if match is not None:
            metrics[name] = _to_float(match.group("value"), f"{parser} {name}")
    return metrics


def parse_dorado(text: str) -> dict[str, float]:
    """Dorado's end-of-run figures; :class:`NoMetricsFound` when there are none."""
    metrics = _scan(_DORADO, text, "dorado")
    if not metrics:
        raise NoMetricsFound(
            "dorado parser: found none of its end-of-run lines ('> Finished in (ms):', '> Simplex reads "
            "basecalled:', '> Reads basecalled:', '> Basecalled @ Samples/s:', '> Basecalled @ Bases/s:') "
            f"- did dorado finish, and is its stderr in this log? {_tail(text)}"
        )
    return metrics


def parse_guppy(text: str) -> dict[str, float]:
    """Guppy's end-of-run figures; :class:`NoMetricsFound` when there are none."""
    metrics = _scan(_GUPPY, text, "guppy")
    if not metrics:
        raise NoMetricsFound(
            "guppy parser: found none of 'Caller time: N ms', 'Samples called: N', 'samples/s: F' "
            f"- did guppy_basecaller finish, and is its output in this log? {_tail(text)}"
        )
    return metrics


def _group_value(parser: RegexParser, match: re.Match[str]) -> str | None:
    named = match.groupdict()
    for key in (parser.metric, "value"):
        if key in named:
            return named[key]
    return match.group(1)


def parse_regex(parser: RegexParser, text: str) -> dict[str, float]:
    """``{parser.metric: value}`` from the last match; :class:`NoMetricsFound` when it never matches."""
    match = _last(parser.compiled(), text)
    if match is None:
        raise NoMetricsFound(f"regex parser for {parser.metric!r}: {parser.regex!r} matched nothing; {_tail(text)}")
    value = _group_value(parser, match)
    if value is None:
        raise ParserError(
            f"regex parser for {parser.metric!r}: {parser.regex!r} matched {match.group(0)!r} "
            "but its value group took part in no match"
        )
    return {parser.metric: _to_float(value, f"regex parser for {parser.metric!r}")}


def parse_metrics(spec: ParserSpec, text: str) -> dict[str, float]:
    """Metrics from ``text`` with the parser ``spec`` (``"dorado"``, ``"guppy"`` or a :class:`RegexParser`).

    Raises :class:`NoMetricsFound` when nothing matched (never an empty dict or zeros) and
    :class:`ParserError` when a match is not a number.
    """
    if isinstance(spec, RegexParser):
        return parse_regex(spec, text)
    if spec == "dorado":
        return parse_dorado(text)
    if spec == "guppy":
        return parse_guppy(text)
    _builtin(spec)  # raises with the list of parsers
    raise AssertionError("unreachable")
