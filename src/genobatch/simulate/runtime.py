"""Run-time distributions: how long one attempt of a job definition runs, in seconds.

Given in the plan (``fixed``, ``normal``, ``lognormal``, ``empirical``) or fitted from a past run's
trace (``genobatch report``'s ``trace.tsv``, or the runs API's JSON with ``trace=1``): the
successful attempts' ``realtime`` of one job definition, resampled as they are (``empirical``) or
summarised by a lognormal fitted to their logarithms (``lognormal``). Failed attempts are left out:
how often attempts fail is the plan's ``failure_rate``, not part of a run time.

Normal draws are cut at 1 ms: a run time is never zero or negative.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MIN_SECONDS = 0.001
Kind = Literal["fixed", "normal", "lognormal", "empirical"]


@dataclass(frozen=True, slots=True)
class Distribution:
    """A run-time distribution: ``kind`` and its parameters (seconds)."""

    kind: Kind
    value: float = 0.0  # fixed
    mean: float = 0.0  # normal
    sd: float = 0.0  # normal
    mu: float = 0.0  # lognormal: mean of ln(seconds)
    sigma: float = 0.0  # lognormal: sd of ln(seconds)
    values: tuple[float, ...] = ()  # empirical

    def sample(self, rng: random.Random) -> float:
        """One run time in seconds."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "normal":
            return max(MIN_SECONDS, rng.normalvariate(self.mean, self.sd))
        if self.kind == "lognormal":
            return rng.lognormvariate(self.mu, self.sigma)
        return self.values[rng.randrange(len(self.values))]

    @property
    def expected_s(self) -> float:
        """The distribution's mean (what capacity planning by hand would use)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "normal":
            return self.mean
        if self.kind == "lognormal":
            return math.exp(self.mu + self.sigma**2 / 2)
        return sum(self.values) / len(self.values)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.value:g} s"
        if self.kind == "normal":
            return f"normal mean {self.mean:g} s, sd {self.sd:g} s"
        if self.kind == "lognormal":
            return f"lognormal median {math.exp(self.mu):.4g} s, sigma {self.sigma:.3g}"
        return f"empirical, {len(self.values)} values, mean {self.expected_s:.4g} s"


def fixed(seconds: float) -> Distribution:
    return Distribution("fixed", value=seconds)


def normal(mean: float, sd: float) -> Distribution:
    return Distribution("normal", mean=mean, sd=sd)


def lognormal(median: float, sigma: float) -> Distribution:
    return Distribution("lognormal", mu=math.log(median), sigma=sigma)


def empirical(values: Sequence[float]) -> Distribution:
    if not values:
        raise ValueError("an empirical distribution needs at least one value")
    return Distribution("empirical", values=tuple(float(v) for v in values))


def fit(values: Sequence[float], how: Literal["empirical", "lognormal"]) -> Distribution:
    """A distribution fitted to observed run times: resampled as is, or a lognormal of their logs."""
    if how == "empirical":
        return empirical(values)
    logs = [math.log(max(v, MIN_SECONDS)) for v in values]
    mu = sum(logs) / len(logs)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in logs) / (len(logs) - 1)) if len(logs) > 1 else 0.0
    return Distribution("lognormal", mu=mu, sigma=sigma)


@dataclass(frozen=True, slots=True)
class TracedRun:
    """One successful attempt read from a trace: its job definition and run time in seconds."""

    job_definition: str
    seconds: float


def _number(value: object) -> float | None:
    if value is None or value in ("", "-"):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def read_trace(path: Path) -> list[TracedRun]:
    """The successful attempts of a trace file (``trace.tsv`` or the runs API's JSON).

    Raises ``ValueError`` naming the problem when the file has no ``realtime`` and
    ``job_definition`` columns.
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        document = json.loads(text)
        records = document.get("trace") if isinstance(document, dict) else document
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a list of trace records or an object with 'trace'")
    else:
        records = list(csv.DictReader(text.splitlines(), delimiter="\t"))
        if records and not {"realtime", "job_definition"} <= set(records[0]):
            raise ValueError(f"{path}: a trace needs the columns realtime and job_definition")
    runs = []
    for record in records:
        if not isinstance(record, dict) or record.get("status") not in ("COMPLETED", None):
            continue
        milliseconds = _number(record.get("realtime"))
        if milliseconds is None or not record.get("job_definition"):
            continue
        # job_definition is "name:revision" in a genobatch trace; the plan names the definition.
        name = str(record["job_definition"]).split(":", 1)[0]
        runs.append(TracedRun(name, milliseconds / 1000))
    return runs
