"""Refreshing the price catalog from AWS: on-demand prices from the Pricing API, spot prices from EC2.

:func:`update_catalog` asks the AWS Pricing API (``pricing:GetProducts``, service ``AmazonEC2``;
Linux, shared tenancy, no pre-installed software, capacity status ``Used``: the plain on-demand
instance hour) and ``ec2:DescribeSpotPriceHistory`` (Linux/UNIX, the price in effect now in every
availability zone), and writes what it found into a price override file (see
``genobatch.cost.catalog``), each figure sourced ``AWS Pricing API`` or ``AWS EC2
DescribeSpotPriceHistory`` and dated. Parsing is split into pure functions over the documented
response shapes so it can be tested without AWS.

Needs AWS credentials and network access: without them it raises :class:`PricingUnavailable` and
writes nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bx
import yaml

from genobatch.cost.catalog import Catalog, builtin_document, merge_documents, read_document

PRICING_API_SOURCE = "AWS Pricing API"
SPOT_SOURCE = "AWS EC2 DescribeSpotPriceHistory"
#: The Pricing API answers only in a few regions; us-east-1 serves every region's prices.
PRICING_API_REGION = "us-east-1"
#: The plain on-demand Linux instance hour: no SQL/Windows licence, no dedicated host, no reservation.
ON_DEMAND_ATTRIBUTES = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}
SPOT_PRODUCTS = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")
CATEGORIES = {
    "General purpose": "general-purpose",
    "Compute optimized": "compute-optimized",
    "Memory optimized": "memory-optimized",
    "Storage optimized": "storage-optimized",
    "GPU instance": "gpu",
    "FPGA Instances": "fpga",
    "Machine Learning ASIC Instances": "accelerator",
}


class PricingUnavailable(RuntimeError):
    """AWS could not be asked: no credentials, no network, or access denied."""


def product_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """The GetProducts filters for one instance type's on-demand Linux price in one region."""
    fields = {"instanceType": instance_type, "regionCode": region, **ON_DEMAND_ATTRIBUTES}
    return [{"Type": "TERM_MATCH", "Field": name, "Value": value} for name, value in fields.items()]


@dataclass(frozen=True, slots=True)
class OnDemandProduct:
    """An on-demand price read from a Pricing API PriceList, with the shape attributes it carried."""

    instance_type: str
    region: str
    usd_per_hour: float
    as_of: str
    vcpus: int | None = None
    memory_gib: float | None = None
    gpus: int = 0
    category: str = ""
    note: str = ""
    #: Where the price was read: the Pricing API, or an offer file (``genobatch.cost.offer_file``).
    source: str = PRICING_API_SOURCE


def _hourly_prices(item: Mapping[str, Any]) -> list[float]:
    """The USD per hour of a product's OnDemand terms (``terms.OnDemand.*.priceDimensions.*``)."""
    prices = []
    for term in item.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if dimension.get("unit") == "Hrs" and usd is not None:
                prices.append(float(usd))
    return prices


def _as_of(item: Mapping[str, Any]) -> str:
    dates = [item.get("publicationDate")]
    dates += [term.get("effectiveDate") for term in item.get("terms", {}).get("OnDemand", {}).values()]
    found = next((d for d in dates if d), "")
    return found[:10]


def _number(text: str | None) -> float | None:
    """``"16 GiB"`` -> 16.0, ``"4"`` -> 4.0; ``None`` for absent or ``"NA"``."""
    if not text:
        return None
    try:
        return float(text.split()[0].replace(",", ""))
    except ValueError:
        return None


def parse_price_list(
    price_list: Iterable[str | Mapping[str, Any]], source: str = PRICING_API_SOURCE
) -> OnDemandProduct | None:
    """The on-demand price in a GetProducts ``PriceList`` (JSON strings, as boto3 returns them).

    Zero prices (placeholder SKUs) and non-``OnDemand`` market options (capacity blocks) are
    skipped; if several products still match, the lowest price is taken and the note says so.
    """
    candidates: list[tuple[float, Mapping[str, Any]]] = []
    for raw in price_list:
        item = json.loads(raw) if isinstance(raw, str) else raw
        attributes = item.get("product", {}).get("attributes", {})
        if attributes.get("marketoption", "OnDemand") != "OnDemand":
            continue
        candidates += [(price, item) for price in _hourly_prices(item) if price > 0]
    if not candidates:
        return None
    price, item = min(candidates, key=lambda c: c[0])
    attributes = item["product"]["attributes"]
    distinct = sorted({p for p, _ in candidates})
    vcpus = _number(attributes.get("vcpu"))
    return OnDemandProduct(
        instance_type=attributes.get("instanceType", ""),
        region=attributes.get("regionCode", ""),
        usd_per_hour=price,
        as_of=_as_of(item),
        vcpus=int(vcpus) if vcpus else None,
        memory_gib=_number(attributes.get("memory")),
        gpus=int(_number(attributes.get("gpu")) or 0),
        category=CATEGORIES.get(attributes.get("instanceFamily", ""), ""),
        note=f"{len(distinct)} prices matched ({distinct}); lowest taken" if len(distinct) > 1 else "",
        source=source,
    )


@dataclass(frozen=True, slots=True)
class SpotSummary:
    """The spot price in effect across a region's availability zones."""

    instance_type: str
    region: str
    usd_per_hour: float  # the median over zones: what a diversified Batch environment tends to pay
    low: float
    high: float
    zones: int
    as_of: str


def summarize_spot_history(
    history: Iterable[Mapping[str, Any]], instance_type: str, region: str, as_of: str
) -> SpotSummary | None:
    """The latest price per zone in a ``SpotPriceHistory`` list, summarised; ``None`` if it has none."""
    latest: dict[str, tuple[str, float]] = {}
    for entry in history:
        if entry.get("InstanceType") != instance_type or entry.get("ProductDescription") not in SPOT_PRODUCTS:
            continue
        zone, stamp, price = entry.get("AvailabilityZone", ""), entry.get("Timestamp"), float(entry["SpotPrice"])
        # boto3 gives datetimes, recorded samples ISO strings: compare both as UTC ISO text.
        stamp = stamp.astimezone(UTC).isoformat() if isinstance(stamp, datetime) else str(stamp)
        if zone not in latest or stamp > latest[zone][0]:
            latest[zone] = (stamp, price)
    if not latest:
        return None
    prices = [price for _, price in latest.values()]
    return SpotSummary(instance_type, region, statistics.median(prices), min(prices), max(prices), len(prices), as_of)


def on_demand_figure(product: OnDemandProduct) -> dict[str, Any]:
    """The catalog figure of a price read from AWS's price list: ``confidence: high``, dated."""
    figure = {"usd_per_hour": product.usd_per_hour, "source": product.source, "as_of": product.as_of}
    figure["confidence"] = "high"
    if product.note:
        figure["note"] = product.note
    return figure


def spot_figure(summary: SpotSummary) -> dict[str, Any]:
    return {
        "usd_per_hour": summary.usd_per_hour,
        "source": SPOT_SOURCE,
        "as_of": summary.as_of,
        "confidence": "medium",  # spot prices move; this is one day's median over zones
        "note": f"median of {summary.zones} zones, range {summary.low}-{summary.high}",
    }


def apply_updates(
    document: Mapping[str, Any],
    products: Sequence[OnDemandProduct],
    spots: Sequence[SpotSummary],
    known_types: Iterable[str],
    as_of: str,
) -> dict[str, Any]:
    """``document`` (an override file's content) with the fetched figures written in.

    A type neither in ``known_types`` nor in the document gets its shape from the Pricing API too,
    so the override stays loadable on its own merits.
    """
    updated = merge_documents(document, {"schema_version": 1, "as_of": as_of})
    types = updated.setdefault("instance_types", {})
    known = set(known_types)
    for product in products:
        entry = types.setdefault(product.instance_type, {})
        if product.instance_type not in known and "vcpus" not in entry and product.vcpus and product.memory_gib:
            entry.update(
                category=product.category,
                vcpus=product.vcpus,
                memory_gib=product.memory_gib,
                gpus=product.gpus,
                spec_source=product.source,
                spec_as_of=product.as_of,
            )
        entry.setdefault("on_demand", {})[product.region] = on_demand_figure(product)
    for summary in spots:
        types.setdefault(summary.instance_type, {}).setdefault("spot", {})[summary.region] = spot_figure(summary)
    return updated


@dataclass(slots=True)
class UpdateResult:
    """What an update wrote, and what AWS had no price for."""

    path: Path
    updated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _unavailable(error: Exception) -> PricingUnavailable:
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        why = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    elif isinstance(error, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        why = f"the AWS endpoint cannot be reached ({error})"
    elif isinstance(error, bx.ClientError):
        why = f"AWS refused the request ({error.response.get('Error', {}).get('Code', 'error')}: {error})"
    else:
        why = str(error)
    return PricingUnavailable(
        f"cannot refresh prices from AWS: {why}. The built-in catalog (and any override file) still works offline."
    )


def _fetch_on_demand(pricing: Any, instance_type: str, region: str) -> OnDemandProduct | None:
    price_list: list[str] = []
    paginator = pricing.get_paginator("get_products")
    pages = paginator.paginate(ServiceCode="AmazonEC2", Filters=product_filters(instance_type, region))
    for page in pages:
        price_list += page.get("PriceList", [])
    return parse_price_list(price_list)


def _fetch_spot(ec2: Any, instance_type: str, region: str, now: datetime) -> SpotSummary | None:
    history: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_spot_price_history")
    # StartTime = now (no EndTime) asks for the price in effect now: one entry per zone.
    pages = paginator.paginate(InstanceTypes=[instance_type], ProductDescriptions=list(SPOT_PRODUCTS), StartTime=now)
    for page in pages:
        history += page.get("SpotPriceHistory", [])
    return summarize_spot_history(history, instance_type, region, now.date().isoformat())


def write_override(path: Path, document: Mapping[str, Any]) -> None:
    """Write an override document to ``path`` (YAML for .yaml/.yml, else JSON), atomically."""
    if path.suffix.lower() in (".yaml", ".yml"):
        text = yaml.safe_dump(dict(document), sort_keys=False)
    else:
        text = json.dumps(document, indent=1) + "\n"
    # Atomic replace: an interrupted update never leaves a half-written override behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def update_catalog(
    path: str | Path,
    regions: Sequence[str],
    instance_types: Sequence[str],
    session: Any = None,
    *,
    spot: bool = True,
    now: datetime | None = None,
) -> UpdateResult:
    """Fetch on-demand (and spot) prices for ``instance_types`` × ``regions`` into the override file ``path``.

    ``session`` is a ``boto3.Session`` (default: a new one, from the usual credential chain). The
    file is created if absent, else updated in place, and is written only if everything could be
    asked. Raises :class:`PricingUnavailable` without credentials or network.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    session = session or boto3.Session()
    result = UpdateResult(path)
    products: list[OnDemandProduct] = []
    spots: list[SpotSummary] = []
    try:
        if session.get_credentials() is None:
            raise bx.NoCredentialsError()
        pricing = session.client("pricing", region_name=PRICING_API_REGION)
        for region in regions:
            ec2 = session.client("ec2", region_name=region) if spot else None
            for instance_type in instance_types:
                product = _fetch_on_demand(pricing, instance_type, region)
                if product is None:
                    result.missing.append(f"{instance_type} on-demand {region}")
                else:
                    products.append(product)
                    result.updated.append(f"{instance_type} on-demand {region}")
                if ec2 is None:
                    continue
                summary = _fetch_spot(ec2, instance_type, region, now)
                if summary is None:
                    result.missing.append(f"{instance_type} spot {region}")
                else:
                    spots.append(summary)
                    result.updated.append(f"{instance_type} spot {region}")
    except (bx.BotoCoreError, bx.ClientError) as error:
        raise _unavailable(error) from error

    existing = read_document(path) if path.exists() else {}
    base = builtin_document()
    document = apply_updates(existing, products, spots, base.get("instance_types", {}), now.date().isoformat())
    Catalog(merge_documents(base, document))  # refuse to write an override that would not load
    write_override(path, document)
    return result
