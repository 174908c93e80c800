"""The price catalog: EC2 instance types, their prices per region, and storage and transfer rates.

The built-in catalog is ``prices.json`` next to this module. Every figure in it carries where it came
from (``source``), when (``as_of``) and how sure we are of it (``confidence``): prices drift, and a
cost report is only as good as the figures behind it, so the provenance travels with each number
(a :class:`Figure` or :class:`Rate`) up to whoever prints it.

A user override file (JSON or YAML, the same layout) adds or replaces entries: it is deep-merged
over the built-in document, so an override may carry only
``instance_types.g5.xlarge.on_demand.eu-central-1`` and keep everything else; each figure it
carries replaces the built-in one whole and must bring its own ``source`` and ``as_of``.
``genobatch.cost.pricing_api.update_catalog`` writes such a file from the AWS Pricing API.

Confidence means one thing per level, and the catalog refuses a figure that claims more than its
source can give: ``high`` is a price read from AWS's price list (the Pricing API or the public offer
files, see ``genobatch.cost.offer_file``) on the full date in ``as_of``; ``medium`` a figure a third
party published, or an observed spot price; ``low`` anything not checked against AWS's price list
(a recalled figure, an assumption, an estimate).

Spot prices: a type's ``spot`` figure for the region when there is one (the Pricing API updater
writes them), else an estimate, on-demand x ``spot_fraction_of_on_demand`` for the type's category:
its :class:`Figure` has ``estimate=True`` and ``confidence: low``, so every output that prints it can
say it is an estimate (a flat fraction of on-demand is not what spot costs on a given day).

Gaps are part of the data: ``missing_on_demand`` says, per type and region, why there is no figure
(:meth:`Catalog.missing`), and a lookup there raises :class:`UnknownRegion` with that reason.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

Purchase = Literal["on-demand", "spot"]
PURCHASES: tuple[Purchase, ...] = ("on-demand", "spot")
BUILTIN_RESOURCE = "prices.json"
GENERAL_PURPOSE = "general-purpose"


class CatalogError(LookupError):
    """A lookup the catalog cannot answer, or a catalog document that is malformed."""

    def __str__(self) -> str:
        # LookupError (a KeyError-like) would repr() the message; show it as written.
        return str(self.args[0]) if self.args else ""


class UnknownInstanceType(CatalogError):
    """The instance type is not in the catalog; the message lists close matches."""


class UnknownRegion(CatalogError):
    """The catalog has no figure for this region; the message lists the regions it has."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One price and its provenance."""

    value: float
    unit: str
    source: str
    as_of: str
    confidence: str = "unknown"
    note: str = ""
    #: True when the value is derived (e.g. spot = on-demand x a fraction), not a price anyone quoted.
    estimate: bool = False


@dataclass(frozen=True, slots=True)
class Tier:
    """A volume tier: ``usd`` per GB for the quantity up to ``up_to_gb`` (cumulative; ``None``: no bound)."""

    up_to_gb: float | None
    usd: float


@dataclass(frozen=True, slots=True)
class Rate:
    """A storage (USD/GB-month) or transfer (USD/GB) rate, tiered by volume, with its provenance."""

    kind: str
    region: str
    unit: str
    tiers: tuple[Tier, ...]
    source: str
    as_of: str
    confidence: str = "unknown"
    note: str = ""

    @property
    def first_tier(self) -> float:
        """The rate of the first tier: what small volumes pay per GB."""
        return self.tiers[0].usd


@dataclass(frozen=True, slots=True)
class InstanceType:
    """An EC2 instance type's shape: what one instance offers to the jobs packed onto it."""

    name: str
    category: str
    vcpus: int
    memory_gib: float
    gpus: int = 0
    gpu_model: str | None = None
    fpgas: int = 0
    fpga_model: str | None = None
    source: str = ""
    as_of: str = ""

    @property
    def memory_mib(self) -> int:
        return int(self.memory_gib * 1024)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


#: What a ``source`` of a ``confidence: high`` figure starts with: AWS's own price list, nothing else.
AWS_PRICE_LIST_SOURCES = ("AWS Pricing API", "AWS price list offer file")
CONFIDENCE_LEVELS = ("high", "medium", "low")
FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Keys that make a mapping one figure: replaced whole by an override, never merged with the old one.
FIGURE_KEYS = frozenset({"usd_per_hour", "value", "tiers"})


def merge_documents(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over ``base``: mappings merge key by key, anything else is replaced.

    A figure (a mapping with a price) is replaced whole: a new price must not inherit the old
    one's source and date.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        is_figure = isinstance(value, Mapping) and not FIGURE_KEYS.isdisjoint(value)
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and not is_figure:
            merged[key] = merge_documents(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def builtin_document() -> dict[str, Any]:
    """The catalog shipped with genobatch, as a plain document."""
    text = resources.files("genobatch.cost").joinpath(BUILTIN_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


def read_document(path: str | Path) -> dict[str, Any]:
    """A catalog (or override) document from a JSON or YAML file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    # YAML is a superset of JSON, but JSON's parser gives better errors for .json files.
    document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(document, dict):
        raise CatalogError(f"{path}: a price catalog must be a mapping at the top level")
    return document


def load_catalog(override: str | Path | None = None) -> Catalog:
    """The built-in catalog, with the entries of the ``override`` file (if given) added or replaced."""
    document = builtin_document()
    if override is not None:
        document = merge_documents(document, read_document(override))
    return Catalog(document)


def _check_figure(where: str, figure: Any, value_key: str) -> None:
    if not isinstance(figure, Mapping):
        raise CatalogError(f"{where}: expected a mapping with {value_key!r}, 'source' and 'as_of'")
    missing = [key for key in (value_key, "source", "as_of") if figure.get(key) in (None, "")]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)} (every figure carries its source and date)")
    if not isinstance(figure[value_key], int | float) or figure[value_key] < 0:
        raise CatalogError(f"{where}: {value_key} must be a non-negative number")
    confidence = figure.get("confidence")
    if confidence is not None and confidence not in CONFIDENCE_LEVELS:
        raise CatalogError(f"{where}: confidence must be one of {', '.join(CONFIDENCE_LEVELS)}, not {confidence!r}")
    if confidence == "high":
        from_price_list = str(figure["source"]).startswith(AWS_PRICE_LIST_SOURCES)
        if not from_price_list or not FULL_DATE.match(str(figure["as_of"])) or figure.get("estimate"):
            raise CatalogError(
                f"{where}: confidence 'high' means read from AWS's price list (source starting with "
                f"{' or '.join(repr(s) for s in AWS_PRICE_LIST_SOURCES)}) on a stated date (as_of YYYY-MM-DD); "
                f"source {figure['source']!r}, as_of {figure['as_of']!r} is not that: use 'medium' or 'low'"
            )


def validate_document(document: Mapping[str, Any]) -> None:
    """Raise :class:`CatalogError` unless every entry has its shape and every figure its source and date."""
    for name, entry in document.get("instance_types", {}).items():
        where = f"instance_types.{name}"
        if not isinstance(entry, Mapping):
            raise CatalogError(f"{where}: expected a mapping")
        for key in ("vcpus", "memory_gib"):
            if not isinstance(entry.get(key), int | float) or entry[key] <= 0:
                raise CatalogError(f"{where}: {key} must be a positive number")
        for purchase in ("on_demand", "spot"):
            for region, figure in entry.get(purchase, {}).items():
                _check_figure(f"{where}.{purchase}.{region}", figure, "usd_per_hour")
    for category, figure in document.get("spot_fraction_of_on_demand", {}).items():
        _check_figure(f"spot_fraction_of_on_demand.{category}", figure, "value")
    for name, by_region in document.get("missing_on_demand", {}).items():
        if not isinstance(by_region, Mapping) or not all(isinstance(why, str) and why for why in by_region.values()):
            raise CatalogError(f"missing_on_demand.{name}: expected a mapping of region to the reason it has no figure")
    for section in ("storage", "transfer"):
        for kind, by_region in document.get(section, {}).items():
            for region, rate in by_region.items():
                where = f"{section}.{kind}.{region}"
                if not isinstance(rate, Mapping) or not rate.get("tiers"):
                    raise CatalogError(f"{where}: expected a mapping with 'tiers'")
                for i, tier in enumerate(rate["tiers"]):
                    _check_figure(f"{where}.tiers[{i}]", {**rate, **tier}, "usd")


def _close(word: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(word, candidates, n=5, cutoff=0.6)
    if not matches:
        # A family or its prefix ("g5", "p4") instead of a full name: offer that family's sizes.
        family = word.split(".", 1)[0]
        matches = [name for name in candidates if name.split(".", 1)[0].startswith(family)][:5]
    return f"; did you mean {', '.join(matches)}?" if matches else ""


class Catalog:
    """Lookups over a (merged, validated) catalog document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        validate_document(document)
        self._document = copy.deepcopy(dict(document))
        self._types: dict[str, dict[str, Any]] = self._document.get("instance_types", {})

    @property
    def document(self) -> dict[str, Any]:
        """A copy of the catalog document (what an override file merges into)."""
        return copy.deepcopy(self._document)

    @property
    def as_of(self) -> str:
        return str(self._document.get("as_of", ""))

    def instance_types(self) -> list[str]:
        return sorted(self._types)

    def regions(self, instance_type: str | None = None) -> list[str]:
        """Regions with an on-demand figure (for one type, or for any)."""
        entries = [self._entry(instance_type)] if instance_type else list(self._types.values())
        return sorted({region for entry in entries for region in entry.get("on_demand", {})})

    def _entry(self, name: str) -> dict[str, Any]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownInstanceType(
                f"instance type {name!r} is not in the price catalog{_close(name, self.instance_types())} "
                "(add it with a price override file)"
            ) from None

    def has(self, name: str) -> bool:
        return name in self._types

    def instance(self, name: str) -> InstanceType:
        """The shape of ``name``; :class:`UnknownInstanceType` with close matches if it is not listed."""
        entry = self._entry(name)
        return InstanceType(
            name=name,
            category=entry.get("category", ""),
            vcpus=int(entry["vcpus"]),
            memory_gib=float(entry["memory_gib"]),
            gpus=int(entry.get("gpus") or 0),
            gpu_model=entry.get("gpu_model"),
            fpgas=int(entry.get("fpgas") or 0),
            fpga_model=entry.get("fpga_model"),
            source=entry.get("spec_source", ""),
            as_of=str(entry.get("spec_as_of", "")),
        )

    def on_demand(self, name: str, region: str) -> Figure:
        """The on-demand $/h of ``name`` in ``region``."""
        prices = self._entry(name).get("on_demand", {})
        if region not in prices:
            have = ", ".join(sorted(prices)) or "none"
            why = self._document.get("missing_on_demand", {}).get(name, {}).get(region)
            raise UnknownRegion(
                f"no on-demand price for {name} in {region!r} (the catalog has: {have})"
                f"{': ' + why if why else ''}; "
                "add one with a price override file or `genobatch prices update`"
            )
        return _hourly(prices[region])

    def missing(self, region: str | None = None) -> list[tuple[str, str, str]]:
        """``(type, region, why)`` for every type with no on-demand figure in one of the catalog's regions.

        The catalog's ``regions`` (and ``region``, if given) are checked for every type; the reason
        is the one ``missing_on_demand`` records, else a generic one. A figure an override adds
        takes the pair off the list.
        """
        regions = [region] if region else list(self._document.get("regions", []))
        reasons = self._document.get("missing_on_demand", {})
        gaps = []
        for name in self.instance_types():
            priced = self._types[name].get("on_demand", {})
            for where in regions:
                if where not in priced:
                    why = reasons.get(name, {}).get(where, "no figure in the catalog")
                    gaps.append((name, where, why))
        return gaps

    def spot_fraction(self, category: str) -> Figure:
        """The estimated spot price as a fraction of on-demand, for an instance category."""
        fractions = self._document.get("spot_fraction_of_on_demand", {})
        figure = fractions.get(category) or fractions.get("default")
        if figure is None:
            raise CatalogError("the price catalog has no spot_fraction_of_on_demand.default")
        return Figure(
            float(figure["value"]),
            "fraction",
            figure["source"],
            str(figure["as_of"]),
            figure.get("confidence", "unknown"),
            figure.get("note", ""),
            bool(figure.get("estimate", False)),
        )

    def price(self, name: str, region: str, purchase: Purchase = "on-demand") -> Figure:
        """$/h for one instance of ``name`` in ``region``, bought ``on-demand`` or ``spot``."""
        if purchase not in PURCHASES:
            raise ValueError(f"purchase must be one of {', '.join(PURCHASES)}, not {purchase!r}")
        entry = self._entry(name)
        if purchase == "on-demand":
            return self.on_demand(name, region)
        spot = entry.get("spot", {})
        if region in spot:
            return _hourly(spot[region])
        # No observed spot price: estimate from on-demand, and say so in the figure itself.
        base = self.on_demand(name, region)
        fraction = self.spot_fraction(entry.get("category", ""))
        return Figure(
            value=round(base.value * fraction.value, 6),
            unit="USD/hour",
            source=f"estimate: on-demand ({base.source}) x {fraction.value} ({fraction.source})",
            as_of=min(base.as_of, fraction.as_of),
            confidence="low",
            note=f"estimated spot price: {fraction.value:g} x on-demand, not an observed spot price",
            estimate=True,
        )

    def _rate(self, section: str, kind: str, region: str) -> Rate:
        kinds = self._document.get(section, {})
        if kind not in kinds:
            raise CatalogError(f"no {section} rate {kind!r}{_close(kind, sorted(kinds))}")
        by_region = kinds[kind]
        if region not in by_region:
            have = ", ".join(sorted(by_region)) or "none"
            raise UnknownRegion(f"no {section} rate {kind} for {region!r} (the catalog has: {have})")
        raw = by_region[region]
        return Rate(
            kind=kind,
            region=region,
            unit=raw.get("unit", ""),
            tiers=tuple(Tier(t.get("up_to_gb"), float(t["usd"])) for t in raw["tiers"]),
            source=raw["source"],
            as_of=str(raw["as_of"]),
            confidence=raw.get("confidence", "unknown"),
            note=raw.get("note", ""),
        )

    def storage_rate(self, kind: str, region: str) -> Rate:
        """USD per GB-month: ``ebs_gp3`` or ``s3_standard``."""
        return self._rate("storage", kind, region)

    def transfer_rate(self, kind: str, region: str) -> Rate:
        """USD per GB: ``internet_egress``, ``inter_region``, ``cross_az`` or ``same_region_s3``."""
        return self._rate("transfer", kind, region)

    def smallest_fitting(self, vcpus: float, memory_mib: float, family: str, region: str) -> InstanceType | None:
        """The smallest type of ``family`` priced in ``region`` with at least these vCPUs and memory."""
        fitting = [
            self.instance(name)
            for name, entry in self._types.items()
            if name.split(".", 1)[0] == family and region in entry.get("on_demand", {})
        ]
        fitting = [t for t in fitting if t.vcpus >= vcpus and t.memory_mib >= memory_mib]
        return min(fitting, key=lambda t: (t.vcpus, t.memory_gib, t.name), default=None)

    def largest(self, family: str, region: str) -> InstanceType | None:
        """The largest type of ``family`` priced in ``region`` (the per-vCPU reference beyond its sizes)."""
        names = [n for n, e in self._types.items() if n.split(".", 1)[0] == family and region in e.get("on_demand", {})]
        return max((self.instance(n) for n in names), key=lambda t: (t.vcpus, t.memory_gib), default=None)


def _hourly(raw: Mapping[str, Any]) -> Figure:
    return Figure(
        value=float(raw["usd_per_hour"]),
        unit="USD/hour",
        source=raw["source"],
        as_of=str(raw["as_of"]),
        confidence=raw.get("confidence", "unknown"),
        note=raw.get("note", ""),
        estimate=bool(raw.get("estimate", False)),
    )
