"""Reading on-demand EC2 prices from AWS's public price list offer files (the Price List Bulk API).

AWS publishes every service's prices as offer files anyone can download without credentials (a
region's EC2 file is the ``currentVersionUrl`` that
``https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json`` lists,
as ``index.json`` or ``index.csv``). :func:`update_from_offer_file` reads one, from a path or an http(s) URL, and
writes the on-demand prices it finds into a price override file, each figure sourced
``AWS price list offer file ...`` with the file's publication date: a catalog can be refreshed
where there are no AWS credentials.

Both documented layouts are read:

- JSON: ``formatVersion``, ``offerCode``, ``version``, ``publicationDate``; ``products`` keyed by
  SKU, each with ``attributes`` (``instanceType``, ``regionCode``, ``operatingSystem``,
  ``tenancy``, ``preInstalledSw``, ``capacitystatus``, ...); ``terms.OnDemand[sku][offerTermCode]
  .priceDimensions[rateCode]`` with ``unit`` and ``pricePerUnit.USD``.
- CSV: five metadata rows (``FormatVersion``, ``Disclaimer``, ``Publication Date``, ``Version``,
  ``OfferCode``), then a header row; one row per SKU x term x price dimension, with columns such
  as ``SKU``, ``OfferTermCode``, ``RateCode``, ``TermType``, ``Unit``, ``PricePerUnit``,
  ``Currency`` and the product attributes under display names (``Instance Type``, ``Region Code``,
  ``Operating System``, ``Tenancy``, ``Pre Installed S/W``, ``CapacityStatus``, ...).

Each row or product is turned into the item shape the Pricing API returns, and the same selection
as :mod:`genobatch.cost.pricing_api` applies (Linux, shared tenancy, no pre-installed software,
capacity status ``Used``; the lowest non-zero hourly price if several still match). Offer files
carry no spot prices. A JSON file is parsed whole (a region's EC2 file is large: hundreds of MB in
memory); the CSV is streamed row by row, so prefer it where memory is short. Products are matched
by their ``regionCode`` attribute; a file without it yields every price as missing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genobatch.cost.catalog import AWS_PRICE_LIST_SOURCES, FULL_DATE, Catalog, builtin_document, merge_documents
from genobatch.cost.catalog import read_document as read_catalog_document
from genobatch.cost.pricing_api import (
    ON_DEMAND_ATTRIBUTES,
    OnDemandProduct,
    UpdateResult,
    apply_updates,
    parse_price_list,
    write_override,
)

OFFER_FILE_SOURCE = AWS_PRICE_LIST_SOURCES[1]
EC2_OFFER_CODE = "AmazonEC2"
CSV_METADATA_ROWS = 5
DOWNLOAD_TIMEOUT_S = 60
#: CSV column (display name) -> the attribute name the JSON file and the Pricing API use.
CSV_ATTRIBUTES = {
    "Instance Type": "instanceType",
    "Region Code": "regionCode",
    "Location": "location",
    "Operating System": "operatingSystem",
    "Tenancy": "tenancy",
    "Pre Installed S/W": "preInstalledSw",
    "CapacityStatus": "capacitystatus",
    "vCPU": "vcpu",
    "Memory": "memory",
    "GPU": "gpu",
    "Instance Family": "instanceFamily",
    "MarketOption": "marketoption",
}
CSV_REQUIRED = ("SKU", "OfferTermCode", "TermType", "Unit", "PricePerUnit", "Instance Type", "Region Code")


class OfferFileError(ValueError):
    """The offer file cannot be read, or is not an EC2 offer file in a documented layout."""


@dataclass(frozen=True, slots=True)
class OfferFile:
    """What an offer file says about the selected instance types and regions."""

    location: str
    offer_code: str
    version: str
    publication_date: str  # YYYY-MM-DD
    products: list[OnDemandProduct]
    missing: list[str]

    @property
    def source(self) -> str:
        return offer_source(self.location, self.version, self.publication_date)


def offer_source(location: str, version: str, publication_date: str) -> str:
    """The ``source`` of a figure read from an offer file (starts with :data:`OFFER_FILE_SOURCE`)."""
    return f"{OFFER_FILE_SOURCE} {location} (AmazonEC2, version {version or 'unstated'}, published {publication_date})"


@contextmanager
def _local_copy(location: str) -> Iterator[Path]:
    """``location`` as a local file: a path as is, an http(s) URL downloaded to a temporary file."""
    if not location.startswith(("http://", "https://")):
        path = Path(location)
        if not path.is_file():
            raise OfferFileError(f"offer file {location!r} does not exist or is not a file")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="genobatch-offer-") as tmp:
        target = Path(tmp) / "offer"
        try:
            with urllib.request.urlopen(location, timeout=DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as error:
            raise OfferFileError(f"cannot download the offer file {location!r}: {error}") from None
        yield target


def _date(text: str, location: str) -> str:
    date = (text or "")[:10]
    if not FULL_DATE.match(date):
        raise OfferFileError(f"offer file {location!r}: publication date {text!r} is not a date (YYYY-MM-DD...)")
    return date


def _wanted(attributes: Mapping[str, Any], regions: set[str], types: set[str]) -> bool:
    if attributes.get("instanceType") not in types or attributes.get("regionCode") not in regions:
        return False
    return all(attributes.get(name) == value for name, value in ON_DEMAND_ATTRIBUTES.items())


def _json_items(document: Mapping[str, Any], regions: set[str], types: set[str]) -> Iterator[dict[str, Any]]:
    on_demand = document.get("terms", {}).get("OnDemand", {})
    for sku, product in document.get("products", {}).items():
        if _wanted(product.get("attributes", {}), regions, types):
            yield {"product": product, "terms": {"OnDemand": on_demand.get(sku, {})}}


def _csv_items(rows: Iterator[list[str]], location: str, regions: set[str], types: set[str]) -> Iterator[dict]:
    header = next(rows, None)
    missing = [name for name in CSV_REQUIRED if header is None or name not in header]
    if missing:
        raise OfferFileError(f"offer file {location!r}: the header row (row 6) lacks {', '.join(missing)}")
    for row in rows:
        record = dict(zip(header, row, strict=False))
        if record.get("TermType") != "OnDemand":
            continue
        attributes = {name: record[column] for column, name in CSV_ATTRIBUTES.items() if column in record}
        if not _wanted(attributes, regions, types):
            continue
        dimension = {"unit": record["Unit"], "pricePerUnit": {record.get("Currency") or "USD": record["PricePerUnit"]}}
        dimensions = {record.get("RateCode", ""): dimension}
        term = {"effectiveDate": record.get("EffectiveDate", ""), "priceDimensions": dimensions}
        yield {"product": {"attributes": attributes}, "terms": {"OnDemand": {record["OfferTermCode"]: term}}}


def read_offer_file(location: str, regions: Sequence[str], instance_types: Sequence[str]) -> OfferFile:
    """The on-demand prices of ``instance_types`` x ``regions`` in the offer file at ``location``."""
    wanted_regions, wanted_types = set(regions), set(instance_types)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    with _local_copy(location) as path, path.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.read(1)
        handle.seek(0)
        if first == "{":
            try:
                document = json.load(handle)
            except json.JSONDecodeError as error:
                raise OfferFileError(f"offer file {location!r} is not valid JSON: {error}") from None
            meta = {key: str(document.get(key, "")) for key in ("offerCode", "version", "publicationDate")}
            items = _json_items(document, wanted_regions, wanted_types)
        else:
            rows = csv.reader(handle)
            head = dict((row + ["", ""])[:2] for row in (next(rows, []) for _ in range(CSV_METADATA_ROWS)))
            meta = {"offerCode": head.get("OfferCode", ""), "version": head.get("Version", "")}
            meta["publicationDate"] = head.get("Publication Date", "")
            items = _csv_items(rows, location, wanted_regions, wanted_types)
        if meta["offerCode"] != EC2_OFFER_CODE:
            raise OfferFileError(
                f"offer file {location!r} is for offer code {meta['offerCode'] or '(none)'!r}, not {EC2_OFFER_CODE!r}"
            )
        published = _date(meta["publicationDate"], location)
        for item in items:
            attributes = item["product"]["attributes"]
            item["publicationDate"] = meta["publicationDate"]
            groups[(attributes["instanceType"], attributes["regionCode"])].append(item)
    source = offer_source(location, meta["version"], published)
    products, missing = [], []
    for region in regions:
        for instance_type in instance_types:
            product = parse_price_list(groups.get((instance_type, region), []), source=source)
            if product is None:
                missing.append(f"{instance_type} on-demand {region}")
            else:
                # The file's publication date, not a term's effective date: the day the list said so.
                products.append(dataclasses.replace(product, as_of=published))
    return OfferFile(location, meta["offerCode"], meta["version"], published, products, missing)


def update_from_offer_file(
    path: str | Path, location: str, regions: Sequence[str], instance_types: Sequence[str]
) -> UpdateResult:
    """Write the on-demand prices in the offer file at ``location`` into the override file ``path``.

    The override is created if absent, else updated in place, and written only if the merged
    catalog still loads. Raises :class:`OfferFileError` for an unreadable or foreign file.
    """
    path = Path(path)
    offer = read_offer_file(location, regions, instance_types)
    existing = read_catalog_document(path) if path.exists() else {}
    base = builtin_document()
    document = apply_updates(existing, offer.products, [], base.get("instance_types", {}), offer.publication_date)
    Catalog(merge_documents(base, document))  # refuse to write an override that would not load
    write_override(path, document)
    updated = [f"{p.instance_type} on-demand {p.region}" for p in offer.products]
    return UpdateResult(path, updated, list(offer.missing))


__all__ = ["OFFER_FILE_SOURCE", "OfferFile", "OfferFileError", "read_offer_file", "update_from_offer_file"]
