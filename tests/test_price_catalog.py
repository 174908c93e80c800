"""Price provenance: what ``confidence`` means, gaps listed as missing, spot estimates labelled, offer files read.

The offer files here are small files the tests write in AWS's documented bulk price list layout
(JSON: ``products`` by SKU, ``terms.OnDemand[sku][offerTermCode].priceDimensions``; CSV: five
metadata rows, a header row, one row per SKU x term x price dimension). Their prices are test data,
not AWS's prices; no real offer file was downloaded (there is no network to AWS here).
"""

from __future__ import annotations

import csv
import http.server
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import spot_queue, wait_for
from openpyxl import load_workbook

from genobatch.benchmark.plan import TargetSpec, resolve_target
from genobatch.benchmark.report import write_benchmark_report
from genobatch.benchmark.results import BenchmarkResults, Recommendation, Spread, TargetSummary
from genobatch.cli.main import cli
from genobatch.cost.catalog import (
    AWS_PRICE_LIST_SOURCES,
    FULL_DATE,
    CatalogError,
    UnknownRegion,
    builtin_document,
    load_catalog,
)
from genobatch.cost.offer_file import OfferFileError, read_offer_file, update_from_offer_file

PUBLISHED = "2026-11-02T18:12:47Z"
ON_DEMAND_TERM = "JRTCKXETXF"
PLAIN = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}


def figures(document: dict) -> Iterator[tuple[str, dict]]:
    """Every priced figure of a catalog document, with where it is."""
    for name, entry in document["instance_types"].items():
        for purchase in ("on_demand", "spot"):
            for region, figure in entry.get(purchase, {}).items():
                yield f"instance_types.{name}.{purchase}.{region}", figure
    for category, figure in document["spot_fraction_of_on_demand"].items():
        yield f"spot_fraction_of_on_demand.{category}", figure
    for section in ("storage", "transfer"):
        for kind, by_region in document[section].items():
            for region, rate in by_region.items():
                yield f"{section}.{kind}.{region}", rate


# ------------------------------------------------------------------------------ confidence


def test_high_confidence_only_for_figures_read_from_aws_price_list_on_a_date() -> None:
    wrong = [
        where
        for where, figure in figures(builtin_document())
        if figure.get("confidence") == "high"
        and not (str(figure["source"]).startswith(AWS_PRICE_LIST_SOURCES) and FULL_DATE.match(str(figure["as_of"])))
    ]
    assert wrong == []


def test_recalled_and_notes_figures_are_low_confidence_and_say_so() -> None:
    for where, figure in figures(builtin_document()):
        source = str(figure["source"]).lower()
        assert "as known" not in source, where  # "as known" said nothing about where a figure came from
        if "reference" in source or "recalled" in source or "assumption" in source:
            assert figure.get("confidence") == "low", (where, figure)
            assert "not read from aws's price list" in source or "not an observed price" in source, where


def test_an_override_claiming_high_confidence_without_aws_price_list_is_refused(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    figure = {"usd_per_hour": 1.3, "source": "a blog post", "as_of": "2025-01-10", "confidence": "high"}
    override.write_text(json.dumps({"instance_types": {"g5.xlarge": {"on_demand": {"eu-central-1": figure}}}}))
    with pytest.raises(CatalogError, match=r"instance_types\.g5\.xlarge\.on_demand\.eu-central-1: confidence 'high'"):
        load_catalog(override)
    # Undated ("2025-01") is not "on a stated date" either, even from the Pricing API.
    figure.update(source="AWS Pricing API", as_of="2025-01")
    override.write_text(json.dumps({"instance_types": {"g5.xlarge": {"on_demand": {"eu-central-1": figure}}}}))
    with pytest.raises(CatalogError, match=r"as_of '2025-01' is not that"):
        load_catalog(override)
    figure.update(as_of="2025-01-10")
    override.write_text(json.dumps({"instance_types": {"g5.xlarge": {"on_demand": {"eu-central-1": figure}}}}))
    assert load_catalog(override).price("g5.xlarge", "eu-central-1").confidence == "high"


# ------------------------------------------------------------------------------ missing regions


def test_seed_000_g5_48xlarge_in_eu_central_1_is_listed_missing_with_why() -> None:
    catalog = load_catalog()
    gaps = {(name, region): why for name, region, why in catalog.missing()}
    assert "seed 000" in gaps[("g5.48xlarge", "eu-central-1")]
    with pytest.raises(UnknownRegion, match="seed 000's published table"):
        catalog.price("g5.48xlarge", "eu-central-1")
    # Every gap in the catalog's regions is listed, none that has a figure.
    for name in catalog.instance_types():
        for region in builtin_document()["regions"]:
            priced = region in catalog.regions(name)
            assert priced != ((name, region) in gaps), (name, region)


def test_no_region_is_filled_by_assuming_another_regions_price() -> None:
    for where, figure in figures(builtin_document()):
        assert "assumed equal" not in figure.get("note", ""), where


# ------------------------------------------------------------------------------ spot estimates


def test_estimated_spot_prices_are_marked_in_the_data(tmp_path: Path) -> None:
    catalog = load_catalog()
    assert all(f.get("estimate") is True for f in builtin_document()["spot_fraction_of_on_demand"].values())
    estimated = catalog.price("m5.xlarge", "us-east-1", "spot")
    assert estimated.estimate and estimated.confidence == "low" and "estimated spot price" in estimated.note
    assert not catalog.price("m5.xlarge", "us-east-1", "on-demand").estimate
    observed = {"usd_per_hour": 0.07, "source": "AWS EC2 DescribeSpotPriceHistory", "as_of": "2026-11-01"}
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"instance_types": {"m5.xlarge": {"spot": {"us-east-1": observed}}}}))
    assert not load_catalog(override).price("m5.xlarge", "us-east-1", "spot").estimate


def run_cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "1000"}).invoke(cli, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.output


def test_prices_show_labels_estimates_and_lists_missing(tmp_path: Path) -> None:
    code, out = run_cli(tmp_path, "prices", "show", "--region", "eu-central-1")
    assert code == 0, out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "missing" in rows["g5.48xlarge"] and "seed 000" in rows["g5.48xlarge"]
    assert "(estimate)" in rows["m5.xlarge"] and "low" in rows["m5.xlarge"]
    assert "spot prices marked (estimate) are on-demand x a flat fraction" in out
    assert "type(s) with no price in eu-central-1" in out
    observed = {"usd_per_hour": 0.07, "source": "AWS EC2 DescribeSpotPriceHistory", "as_of": "2026-11-01"}
    (tmp_path / "prices.json").write_text(
        json.dumps({"instance_types": {"m5.xlarge": {"spot": {"eu-central-1": observed}}}})
    )
    code, out = run_cli(tmp_path, "prices", "show", "m5.xlarge", "--region", "eu-central-1")
    assert code == 0 and "(estimate)" not in out and "0.0700" in out, out


# ------------------------------------------------------------------------------ offer files


def json_offer(offer_code: str = "AmazonEC2") -> dict:
    """A small EC2 offer file in the documented JSON layout, with the SKUs a real one holds beside the plain one."""
    products: dict[str, dict] = {}
    on_demand: dict[str, dict] = {}

    def sku(code: str, instance_type: str, region: str, usd: str, **attributes: str) -> None:
        products[code] = {
            "sku": code,
            "productFamily": "Compute Instance",
            "attributes": {
                "instanceType": instance_type,
                "regionCode": region,
                "location": "test",
                "vcpu": "4",
                "memory": "16 GiB",
                "instanceFamily": "General purpose",
                **PLAIN,
                **attributes,
            },
        }
        term = f"{code}.{ON_DEMAND_TERM}"
        dimension = {"rateCode": f"{term}.6YS6EN2CT7", "unit": "Hrs", "pricePerUnit": {"USD": usd}}
        on_demand[code] = {
            term: {"offerTermCode": ON_DEMAND_TERM, "sku": code, "effectiveDate": "2026-10-01T00:00:00Z",
                   "priceDimensions": {dimension["rateCode"]: dimension}, "termAttributes": {}},
        }  # fmt: skip

    sku("AAA1", "m5.xlarge", "us-east-1", "0.1971000000")  # the plain Linux on-demand hour
    sku("AAA2", "m5.xlarge", "us-east-1", "0.3811000000", operatingSystem="Windows")
    sku("AAA3", "m5.xlarge", "us-east-1", "0.1500000000", capacitystatus="AllocatedCapacityReservation")
    sku("AAA4", "m5.xlarge", "us-east-1", "0.2100000000", tenancy="Dedicated")
    sku("AAA5", "m5.xlarge", "us-east-1", "0.0000000000")  # placeholder SKU: skipped
    sku("AAA6", "m5.xlarge", "us-west-2", "0.1999000000")  # a region not asked for
    sku("AAA7", "g5.48xlarge", "eu-central-1", "20.0001000000", vcpu="192", memory="768 GiB")
    reserved = {
        "AAA1": {"AAA1.4NA7Y494T4": {"priceDimensions": {"x": {"unit": "Hrs", "pricePerUnit": {"USD": "0.1"}}}}}
    }
    return {
        "formatVersion": "v1.0",
        "disclaimer": "test data in AWS's documented layout",
        "offerCode": offer_code,
        "version": "20261102181247",
        "publicationDate": PUBLISHED,
        "products": products,
        "terms": {"OnDemand": on_demand, "Reserved": reserved},
    }


CSV_COLUMNS = [
    "SKU", "OfferTermCode", "RateCode", "TermType", "PriceDescription", "EffectiveDate", "StartingRange",
    "EndingRange", "Unit", "PricePerUnit", "Currency", "LeaseContractLength", "PurchaseOption", "Product Family",
    "serviceCode", "Location", "Instance Type", "Instance Family", "vCPU", "Memory", "Tenancy", "Operating System",
    "CapacityStatus", "Pre Installed S/W", "Region Code", "MarketOption",
]  # fmt: skip


def csv_offer(path: Path) -> Path:
    """The same products as :func:`json_offer`, in the documented CSV layout."""
    document = json_offer()
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, quoting=csv.QUOTE_ALL)
        out.writerow(["FormatVersion", "v1.0"])
        out.writerow(["Disclaimer", document["disclaimer"]])
        out.writerow(["Publication Date", PUBLISHED])
        out.writerow(["Version", document["version"]])
        out.writerow(["OfferCode", "AmazonEC2"])
        out.writerow(CSV_COLUMNS)
        for code, product in document["products"].items():
            a = product["attributes"]
            ((term_code, term),) = document["terms"]["OnDemand"][code].items()
            ((rate, dimension),) = term["priceDimensions"].items()
            common = ["Compute Instance", "AmazonEC2", a["location"], a["instanceType"], a["instanceFamily"],
                      a["vcpu"], a["memory"], a["tenancy"], a["operatingSystem"], a["capacitystatus"],
                      a["preInstalledSw"], a["regionCode"], "OnDemand"]  # fmt: skip
            out.writerow([code, ON_DEMAND_TERM, rate, "OnDemand", "", "2026-10-01", "0", "Inf", "Hrs",
                          dimension["pricePerUnit"]["USD"], "USD", "", "", *common])  # fmt: skip
            out.writerow([code, "4NA7Y494T4", f"{code}.4NA7Y494T4.x", "Reserved", "", "2026-10-01", "0", "Inf", "Hrs",
                          "0.1000000000", "USD", "1yr", "No Upfront", *common])  # fmt: skip
    return path


def check_offer_prices(override: Path, location: str) -> None:
    catalog = load_catalog(override)
    m5 = catalog.price("m5.xlarge", "us-east-1")
    assert m5.value == 0.1971 and m5.confidence == "high" and m5.as_of == "2026-11-02"
    assert (
        m5.source.startswith("AWS price list offer file")
        and location in m5.source
        and "published 2026-11-02" in m5.source
    )
    g5 = catalog.price("g5.48xlarge", "eu-central-1")  # the gap, filled from the (test) offer file
    assert g5.value == 20.0001 and g5.confidence == "high"
    assert ("g5.48xlarge", "eu-central-1") not in {(n, r) for n, r, _ in catalog.missing()}
    # Not asked for, so untouched: the built-in (low-confidence) figure stays.
    assert catalog.price("m5.xlarge", "us-west-2").confidence == "low"


def test_update_from_a_json_offer_file(tmp_path: Path) -> None:
    offer = tmp_path / "index.json"
    offer.write_text(json.dumps(json_offer()))
    override = tmp_path / "prices.json"
    result = update_from_offer_file(override, str(offer), ["us-east-1", "eu-central-1"], ["m5.xlarge", "g5.48xlarge"])
    assert sorted(result.updated) == ["g5.48xlarge on-demand eu-central-1", "m5.xlarge on-demand us-east-1"]
    assert sorted(result.missing) == ["g5.48xlarge on-demand us-east-1", "m5.xlarge on-demand eu-central-1"]
    check_offer_prices(override, str(offer))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The CSV offer file served over HTTP on loopback: its URL."""
    root = tmp_path / "www"
    root.mkdir()
    csv_offer(root / "index.csv")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - the base class's signature
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:  # noqa: ANN002 - silence the access log
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.csv"
    server.shutdown()
    server.server_close()


def test_prices_update_reads_a_csv_offer_file_from_a_url(tmp_path: Path, served: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args = ["--region", "us-east-1", "--region", "eu-central-1", "--type", "m5.xlarge", "--type", "g5.48xlarge"]
    code, out = run_cli(data_dir, "prices", "update", "--offer-file", served, *args)
    assert code == 0, out
    assert "updated 2 prices" in out and "missing: m5.xlarge on-demand eu-central-1" in out
    check_offer_prices(data_dir / "prices.json", served)
    code, out = run_cli(data_dir, "prices", "show", "g5.48xlarge", "--region", "eu-central-1")
    assert code == 0 and "20.0001" in out and "high" in out and "AWS price list offer file" in out, out


def test_offer_file_errors_name_the_option_and_write_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    wrong = tmp_path / "s3.json"
    wrong.write_text(json.dumps(json_offer("AmazonS3")))
    for location, why in (
        (str(wrong), "is for offer code 'AmazonS3', not 'AmazonEC2'"),
        (str(tmp_path / "absent.json"), "does not exist"),
        ("http://127.0.0.1:9/index.json", "cannot download"),
    ):
        code, out = run_cli(data_dir, "prices", "update", "--offer-file", location, "--type", "m5.xlarge")
        assert code != 0 and "--offer-file" in out and why in out, out
    assert not (data_dir / "prices.json").exists()
    undated = json_offer()
    undated["publicationDate"] = "soon"
    wrong.write_text(json.dumps(undated))
    with pytest.raises(OfferFileError, match="publication date 'soon' is not a date"):
        read_offer_file(str(wrong), ["us-east-1"], ["m5.xlarge"])


# ------------------------------------------------------------------------------ outputs


def bench_summary(target) -> TargetSummary:  # noqa: ANN001 - a results.Target
    one = Spread(1.0, 1.0, 1.0)
    return TargetSummary(
        "tool", "default", target, 1, 1, Spread(100.0, 100.0, 100.0), Spread(0.0, 0.0, 0.0), [], 10.0, "reads",
        one, None, None, one, one, one,
    )  # fmt: skip


def test_bench_report_labels_estimated_spot_prices(tmp_path: Path) -> None:
    catalog = load_catalog()
    spot = resolve_target(TargetSpec(name="g4-spot", compute_environment="ce", instance_type="g4dn.xlarge",
                                     purchase="spot", region="us-west-2"), catalog)  # fmt: skip
    paid = resolve_target(TargetSpec(name="g4-od", compute_environment="ce", instance_type="g4dn.xlarge",
                                     region="us-west-2"), catalog)  # fmt: skip
    assert spot.price_estimated and not paid.price_estimated
    results = BenchmarkResults(
        plan_name="estimates",
        run_id="bench-est",
        created=datetime(2026, 11, 2, tzinfo=UTC),
        workload_name="genome",
        workload_units=100.0,
        work_unit="reads",
        overhead_s=0.0,
        summaries=[bench_summary(spot), bench_summary(paid)],
        recommendation=Recommendation(1, None, None, None, None, []),
        equivalence=[],
    )
    files = write_benchmark_report(results, tmp_path)
    html = files.html.read_text()
    assert "spot (estimated price)" in html
    assert "Estimated prices: the price of g4-spot is an estimate" in html
    purchases = {
        row[0]: row
        for sheet in load_workbook(files.xlsx).worksheets
        for row in sheet.iter_rows(values_only=True)
        if row and row[0] in ("g4-spot", "g4-od")
    }
    assert "spot (estimated price)" in purchases["g4-spot"] and "on-demand" in purchases["g4-od"]


@pytest.mark.slow
def test_run_cost_and_report_label_an_estimated_spot_price(genobatch_server, batch, tmp_path: Path) -> None:
    queue, ce = spot_queue(batch, "est")  # bills as an m5.xlarge on spot (4 vCPUs, 16 GiB)
    definition = batch.register_job_definition(
        jobDefinitionName="est-def",
        type="container",
        containerProperties={"image": "busybox", "command": ["true"], "vcpus": 1, "memory": 512},
    )["jobDefinitionArn"]
    run = "run-" + uuid.uuid4().hex[:6]
    job = batch.submit_job(jobName="j", jobQueue=queue, jobDefinition=definition, tags={"genobatch:run": run})
    assert wait_for(batch, job["jobId"])["status"] == "SUCCEEDED"

    (environment,) = genobatch_server.native("/runs", run=run)["cost"]["computeEnvironments"]
    assert environment["priceEstimated"] is True and environment["purchase"] == "spot"

    command = [sys.executable, "-m", "genobatch", "--data-dir", str(genobatch_server.data_dir)]
    command += ["--endpoint", genobatch_server.endpoint]
    env = {**genobatch_server.env(), "COLUMNS": "300"}  # wider than any COLUMNS the runner set
    cost = subprocess.run([*command, "cost", "--run", run], capture_output=True, text=True, env=env, timeout=120)
    assert cost.returncode == 0, cost.stderr
    assert "spot (estimated price)" in cost.stdout and "price is an estimate" in cost.stdout

    out = tmp_path / "report"
    report = subprocess.run(
        [*command, "report", run, "--out", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert report.returncode == 0, report.stderr
    html = (out / "report.html").read_text()
    assert 'class="warn price-estimate"' in html and f"Estimated price: {ce} is billed at spot" in html
    summary_rows = [row for row in load_workbook(out / "report.xlsx").worksheets[0].iter_rows(values_only=True)]
    assert any(row[0] == "Estimated price" and ce in str(row[1]) for row in summary_rows), summary_rows
