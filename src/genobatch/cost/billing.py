"""Billing formulas: what an attempt costs, what a compute environment is billed, storage and transfer.

Pure functions over numbers and intervals (no I/O, no clock), like ``genobatch.core``.

Formulas
--------

**Billing model of a compute environment** (:class:`BillingSpec`): one instance type's shape
(vCPUs, memory, GPUs) and its price per hour, on-demand or spot, in one region. It is derived from
the compute environment (:func:`billing_spec_from_compute_environment`):

* the equivalent EC2 type is ``computeResources.instanceTypes[0]`` (for a local compute
  environment too: it names the cloud type the host stands for). A family name (``m5``) means its
  smallest size that holds the host. Missing or ``optimal``: the smallest ``m6i`` with at least the
  host's vCPUs and memory (``maxvCpus`` stands for the host's vCPUs when they are not given); a
  host larger than the largest ``m6i`` in the catalog is priced at that type's per-vCPU rate times
  the host's vCPUs. A GPU host should name its GPU equivalent (``g5.12xlarge``): the default is a
  CPU type;
* ``computeResources.type`` ``SPOT`` or ``FARGATE_SPOT`` → the spot price, anything else →
  on-demand;
* the tag ``genobatch:price-per-hour`` overrides the catalog price (with no named type, the
  instance is the host itself: its vCPUs, memory and GPUs);
* the tag ``genobatch:region`` picks the pricing region, else the server's region.

**Per-second billing**: an instance held ``t`` seconds is billed ``max(60, ceil(t))`` seconds, at
``price_per_hour / 3600`` per second (EC2 Linux: per second, 60-second minimum per instance).

**Attributed cost** of an attempt (what the job is responsible for)::

    share = min(1, max(vcpus_req / instance_vcpus,
                       memory_req / instance_memory,
                       gpus_req / instance_gpus))          # GPU term only if the instance has GPUs
    attributed = share × price_per_hour × running_seconds / 3600

The largest fraction is the one that keeps other jobs off the instance: a 1-GPU job on a 4-GPU,
48-vCPU instance pays a quarter of it even with 1 vCPU. No minimum applies: the 60 s minimum is the
instance's, and is in the billed cost.

**Billed cost**: the instance time the compute environment held, idle included. The attempts on
one compute environment are packed onto instances of its type in start order: an attempt goes on
the first instance (in launch order) with room for it; if none has room, an instance is launched at
its start. An instance with nothing running is released ``idle_grace_s`` later (AWS Batch scales
down after a delay; default 0: released at once) unless an attempt lands on it first. Each
instance's lifetime is billed per second with the 60 s minimum::

    billed = Σ_instances max(60, ceil(release − launch)) × price_per_hour / 3600

An attempt bigger than one instance gets an instance of its own. The packing models a promptly
scaling environment of one instance type; AWS Batch may launch other sizes and place jobs
differently, so billed cost is an estimate, not a replay of an AWS bill. ``billed − Σ attributed``
is the cost of capacity no job used (it can be negative when jobs bounded by different resources
share an instance).

**Storage**: ``gb × usd_per_gb_month × days × 24 / 730`` (AWS prices a month as 730 hours).
**Transfer**: ``gb × usd_per_gb``. Both accept tiered rates: each tier's price applies to the part
of the volume inside it (``up_to_gb`` is cumulative). GB are AWS's billing GB (2^30 bytes).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from genobatch.cost.catalog import Catalog, Purchase, Rate, Tier

SECONDS_PER_HOUR = 3600
MINIMUM_BILLED_S = 60
HOURS_PER_MONTH = 730
SPOT_TYPES = frozenset({"SPOT", "FARGATE_SPOT"})
PRICE_TAG = "genobatch:price-per-hour"
REGION_TAG = "genobatch:region"
#: The family a local host is priced as when its compute environment names no instance type.
LOCAL_EQUIVALENT_FAMILY = "m6i"
#: instanceTypes values that let AWS choose, so name no equivalent type.
AUTO_INSTANCE_TYPES = frozenset({"optimal", "default_x86_64", "default_arm64"})
# Resource comparisons tolerate float noise (Fargate-style fractional vCPUs sum inexactly).
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BillingSpec:
    """How a compute environment is billed: one instance type's shape and its price per hour."""

    instance_type: str | None
    price_per_hour: float
    vcpus: float
    memory_mib: float
    gpus: int = 0
    purchase: Purchase = "on-demand"
    region: str = "us-east-1"
    price_source: str = ""
    price_as_of: str = ""
    #: The price is an estimate (spot = on-demand x a flat fraction), not a quoted price: reports say so.
    price_estimated: bool = False

    def __post_init__(self) -> None:
        if self.price_per_hour < 0 or self.vcpus <= 0 or self.memory_mib <= 0 or self.gpus < 0:
            raise ValueError(f"invalid billing spec: {self}")


@dataclass(frozen=True, slots=True)
class Usage:
    """One attempt as billing sees it: what it requested and when it ran (seconds, any epoch)."""

    start_s: float
    stop_s: float
    vcpus: float
    memory_mib: float
    gpus: int = 0
    key: str = ""

    @property
    def running_s(self) -> float:
        return max(0.0, self.stop_s - self.start_s)


@dataclass(frozen=True, slots=True)
class InstanceLifetime:
    """One instance the compute environment held: when, for how long it is billed, what ran on it."""

    index: int
    launch_s: float
    release_s: float
    billed_s: int
    attempts: tuple[str, ...] = ()

    @property
    def held_s(self) -> float:
        return self.release_s - self.launch_s


def billed_seconds(held_s: float, minimum_s: int = MINIMUM_BILLED_S) -> int:
    """Per-second billing: whole seconds, rounded up, never less than the minimum."""
    return max(minimum_s, math.ceil(max(0.0, held_s) - _EPSILON))


def instance_cost(held_s: float, price_per_hour: float, minimum_s: int = MINIMUM_BILLED_S) -> float:
    """What one instance held ``held_s`` seconds is billed."""
    return billed_seconds(held_s, minimum_s) * price_per_hour / SECONDS_PER_HOUR


def share(vcpus: float, memory_mib: float, gpus: int, spec: BillingSpec) -> float:
    """The fraction of an instance an attempt takes: its largest relative request, at most 1."""
    fractions = [vcpus / spec.vcpus, memory_mib / spec.memory_mib]
    if spec.gpus > 0:
        fractions.append(gpus / spec.gpus)
    return min(1.0, max(fractions))


def attributed_cost(usage: Usage, spec: BillingSpec) -> float:
    """``share × price_per_hour × running_seconds / 3600``: the attempt's part of its instance's price."""
    return share(usage.vcpus, usage.memory_mib, usage.gpus, spec) * spec.price_per_hour * usage.running_s / 3600


@dataclass(slots=True)
class _Instance:
    """Packing state of one instance while sweeping through time."""

    index: int
    launch_s: float
    free_vcpus: float
    free_memory: float
    free_gpus: int
    running: int = 0
    idle_since: float | None = None
    release_s: float | None = None
    attempts: list[str] = field(default_factory=list)

    def fits(self, usage: Usage) -> bool:
        return (
            usage.vcpus <= self.free_vcpus + _EPSILON
            and usage.memory_mib <= self.free_memory + _EPSILON
            and usage.gpus <= self.free_gpus
        )


def _oversized(usage: Usage, spec: BillingSpec) -> bool:
    return (
        usage.vcpus > spec.vcpus + _EPSILON or usage.memory_mib > spec.memory_mib + _EPSILON or usage.gpus > spec.gpus
    )


def billed_instance_seconds(
    attempts: Iterable[Usage],
    spec: BillingSpec,
    idle_grace_s: float = 0,
    minimum_s: int = MINIMUM_BILLED_S,
) -> list[InstanceLifetime]:
    """The instances a compute environment of type ``spec`` held to run ``attempts``, and their billed seconds.

    First-fit packing in start order (see the module docstring); instances freed and needed at the
    same instant are reused, so back-to-back attempts share one instance.
    """
    if idle_grace_s < 0:
        raise ValueError("idle_grace_s must be >= 0")
    usages = list(attempts)
    # Stops sort before starts at the same instant so capacity freed at t can be taken at t; an
    # attempt that stopped the millisecond it started (or before, by a remote engine's clock)
    # stops after its own start.
    events = sorted(
        [(max(u.stop_s, u.start_s), 0 if u.stop_s > u.start_s else 2, i) for i, u in enumerate(usages)]
        + [(u.start_s, 1, i) for i, u in enumerate(usages)],
        key=lambda e: (e[0], e[1], usages[e[2]].start_s, e[2]),
    )
    instances: list[_Instance] = []
    # Instances that could take more work, by launch order: full ones are skipped without a look,
    # which keeps large runs (tens of thousands of attempts) near O(n log n).
    open_indices = SortedList()
    expiries: list[tuple[float, int]] = []  # (idle_since + grace, index), a min-heap
    placed: dict[int, _Instance] = {}

    def take(instance: _Instance, usage: Usage, sign: int) -> None:
        # An oversized attempt takes its whole instance: amounts are capped at the instance's shape.
        instance.free_vcpus -= sign * min(usage.vcpus, spec.vcpus)
        instance.free_memory -= sign * min(usage.memory_mib, spec.memory_mib)
        instance.free_gpus -= sign * min(usage.gpus, spec.gpus)
        instance.running += sign
        has_room = instance.free_vcpus > _EPSILON and instance.free_memory > _EPSILON
        if has_room and instance.index not in open_indices:
            open_indices.add(instance.index)
        elif not has_room and instance.index in open_indices:
            open_indices.remove(instance.index)

    for time_s, kind, i in events:
        usage = usages[i]
        if kind != 1:  # a stop
            instance = placed.pop(i)
            take(instance, usage, -1)
            if instance.running == 0:
                instance.idle_since = time_s
                heapq.heappush(expiries, (time_s + idle_grace_s, instance.index))
            continue
        # Instances idle past their grace before this start were released then: they take nothing.
        while expiries and expiries[0][0] < time_s:
            due, index = heapq.heappop(expiries)
            instance = instances[index]
            if instance.idle_since is not None and instance.idle_since + idle_grace_s == due:
                instance.release_s = due
                open_indices.discard(index)
        target = None
        if not _oversized(usage, spec):
            target = next((instances[x] for x in open_indices if instances[x].fits(usage)), None)
        if target is None:
            target = _Instance(len(instances), time_s, spec.vcpus, spec.memory_mib, spec.gpus)
            instances.append(target)
        take(target, usage, +1)
        target.idle_since = None
        target.attempts.append(usage.key or str(i))
        placed[i] = target

    lifetimes = []
    for instance in instances:
        release = instance.release_s
        if release is None:
            idle_since = instance.idle_since if instance.idle_since is not None else instance.launch_s
            release = idle_since + idle_grace_s
        lifetimes.append(
            InstanceLifetime(
                index=instance.index,
                launch_s=instance.launch_s,
                release_s=release,
                billed_s=billed_seconds(release - instance.launch_s, minimum_s),
                attempts=tuple(instance.attempts),
            )
        )
    return lifetimes


def billed_cost(
    attempts: Iterable[Usage],
    spec: BillingSpec,
    idle_grace_s: float = 0,
    minimum_s: int = MINIMUM_BILLED_S,
) -> float:
    """What the compute environment is billed for running ``attempts``: its instances' billed seconds × price."""
    lifetimes = billed_instance_seconds(attempts, spec, idle_grace_s, minimum_s)
    return sum(life.billed_s for life in lifetimes) * spec.price_per_hour / SECONDS_PER_HOUR


def tiered_cost(quantity_gb: float, tiers: Sequence[Tier]) -> float:
    """Cost of ``quantity_gb`` under volume tiers (each tier's price on the part of the volume inside it)."""
    if quantity_gb < 0:
        raise ValueError("a volume cannot be negative")
    total, lower = 0.0, 0.0
    for tier in tiers:
        upper = math.inf if tier.up_to_gb is None else float(tier.up_to_gb)
        if quantity_gb > lower:
            total += (min(quantity_gb, upper) - lower) * tier.usd
        lower = upper
    if quantity_gb > lower:
        raise ValueError("the last tier must be unbounded (up_to_gb: null)")
    return total


def _tiers(rate: float | Rate | Sequence[Tier]) -> Sequence[Tier]:
    if isinstance(rate, Rate):
        return rate.tiers
    if isinstance(rate, int | float):
        return (Tier(None, float(rate)),)
    return rate


def storage_cost(gb: float, days: float, rate: float | Rate | Sequence[Tier]) -> float:
    """Storing ``gb`` for ``days`` at ``rate`` USD per GB-month (a month being 730 hours)."""
    if days < 0:
        raise ValueError("days cannot be negative")
    return tiered_cost(gb, _tiers(rate)) * days * 24 / HOURS_PER_MONTH


def transfer_cost(gb: float, rate: float | Rate | Sequence[Tier]) -> float:
    """Moving ``gb`` at ``rate`` USD per GB (tiered rates: the volume of one month's transfer)."""
    return tiered_cost(gb, _tiers(rate))


def _price_tag(tags: Mapping[str, str]) -> float | None:
    raw = tags.get(PRICE_TAG)
    if raw is None:
        return None
    try:
        value = float(str(raw).strip().lstrip("$"))
    except ValueError:
        raise ValueError(f"tag {PRICE_TAG} must be a number of USD per hour, not {raw!r}") from None
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ValueError(f"tag {PRICE_TAG} must be a non-negative number, not {raw!r}")
    return value


def billing_spec_from_compute_environment(
    document: Mapping[str, Any],
    catalog: Catalog,
    default_region: str,
    host_vcpus: float | None = None,
    host_memory_mib: float | None = None,
    host_gpus: int = 0,
    local_family: str = LOCAL_EQUIVALENT_FAMILY,
) -> BillingSpec:
    """The billing model of a compute environment (a DescribeComputeEnvironments item); rules in the module doc.

    ``host_vcpus``/``host_memory_mib``/``host_gpus`` describe what the environment stands for when
    it names no instance type (the local host's slice); ``host_vcpus`` defaults to
    ``computeResources.maxvCpus``.
    """
    tags = document.get("tags") or {}
    region = tags.get(REGION_TAG) or default_region
    resources = document.get("computeResources") or {}
    purchase: Purchase = "spot" if resources.get("type") in SPOT_TYPES else "on-demand"
    price_override = _price_tag(tags)
    named = [t for t in resources.get("instanceTypes") or [] if t not in AUTO_INSTANCE_TYPES]
    first = named[0] if named else None
    vcpus = host_vcpus if host_vcpus is not None else resources.get("maxvCpus")

    if first is not None and catalog.has(first):
        return _spec_for_type(catalog, first, region, purchase, price_override)

    families = {name.split(".", 1)[0] for name in catalog.instance_types()}
    if first is not None and first not in families:
        if price_override is None:
            catalog.instance(first)  # raises UnknownInstanceType with close matches
        # An unlisted type priced by tag: the shape is the host's.
        return _host_spec(first, price_override, vcpus, host_memory_mib, host_gpus, purchase, region)

    if first is None and price_override is not None:
        # No equivalent type named, a price given: the instance is the host itself.
        return _host_spec(None, price_override, vcpus, host_memory_mib, host_gpus, purchase, region)

    family = first or local_family
    if not vcpus:
        raise ValueError("a compute environment with no instance type needs host_vcpus (or computeResources.maxvCpus)")
    fitting = catalog.smallest_fitting(vcpus, host_memory_mib or 0, family, region)
    if fitting is not None:
        return _spec_for_type(catalog, fitting.name, region, purchase, price_override)
    # Bigger than any size of the family: the host's shape, at the largest size's per-vCPU rate.
    largest = catalog.largest(family, region)
    if largest is None:
        raise ValueError(f"the price catalog has no {family} type priced in {region}")
    estimated = False
    if price_override is not None:
        price, source, as_of = price_override, f"tag {PRICE_TAG}", ""
    else:
        figure = catalog.price(largest.name, region, purchase)
        price = figure.value * vcpus / largest.vcpus
        source, as_of = f"{largest.name} per-vCPU rate x {vcpus} vCPUs ({figure.source})", figure.as_of
        estimated = figure.estimate
    return BillingSpec(
        instance_type=None,
        price_per_hour=price,
        vcpus=vcpus,
        memory_mib=host_memory_mib or largest.memory_mib * vcpus / largest.vcpus,
        gpus=host_gpus,
        purchase=purchase,
        region=region,
        price_source=source,
        price_as_of=as_of,
        price_estimated=estimated,
    )


def _spec_for_type(
    catalog: Catalog, name: str, region: str, purchase: Purchase, price_override: float | None
) -> BillingSpec:
    shape = catalog.instance(name)
    if price_override is not None:
        price, source, as_of, estimated = price_override, f"tag {PRICE_TAG}", "", False
    else:
        figure = catalog.price(name, region, purchase)
        price, source, as_of, estimated = figure.value, figure.source, figure.as_of, figure.estimate
    return BillingSpec(
        name, price, shape.vcpus, shape.memory_mib, shape.gpus, purchase, region, source, as_of, estimated
    )


def _host_spec(
    name: str | None,
    price: float,
    vcpus: float | None,
    memory_mib: float | None,
    gpus: int,
    purchase: Purchase,
    region: str,
) -> BillingSpec:
    if not vcpus or not memory_mib:
        raise ValueError(
            f"a compute environment priced by tag {PRICE_TAG} without a catalog instance type needs the host's "
            "vCPUs and memory"
        )
    return BillingSpec(name, price, vcpus, memory_mib, gpus, purchase, region, f"tag {PRICE_TAG}", "")
