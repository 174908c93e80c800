"""A compute environment's instances, as the scheduler's capacity pool.

:class:`Fleet` offers the pool interface of :mod:`genobatch.core.pool` (``could_ever_fit``,
``has_free_vcpu``, ``fits_now``, ``take``, ``reserve``, ``release``), so the unchanged scheduler
places jobs on it exactly as it places them on a host. It is many hosts of one instance type: vCPU
``c`` and GPU ``g`` of instance ``i`` have the global indices ``i * vcpus + c`` and
``i * gpus + g``, so the devices the scheduler hands an attempt also say which instance runs it
(a spot interruption ends every attempt on its instance).

Scaling follows a managed AWS Batch compute environment: ``min_vcpus`` of instances run from the
start and are never released; RUNNABLE jobs that do not fit make it launch instances (up to
``max_vcpus``), which take jobs ``scaling_delay_s`` after launch and are billed from launch; an
instance idle for ``scale_down_after_s`` is released. Placement within the fleet is first fit in
launch order, the same rule the billing packs attempts by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from genobatch.core.job import Resources


@dataclass(slots=True)
class Instance:
    """One instance: when it was launched, came up and went away, and what is free on it (ms, MiB)."""

    index: int
    launched_at: int
    up_at: int
    free_vcpus: int
    free_memory: int
    free_gpus: int
    released_at: int | None = None
    interrupted: bool = False
    running: set[tuple[str, int]] = field(default_factory=set)  # (job id, attempt)
    idle_since: int | None = None

    @property
    def alive(self) -> bool:
        return self.released_at is None


class Fleet:
    """The instances of one compute environment (pool name ``fleet:<compute environment>``)."""

    def __init__(
        self,
        compute_environment: str,
        shape: Resources,
        min_vcpus: int,
        max_vcpus: int,
        scaling_delay_ms: int,
    ) -> None:
        self.name = f"fleet:{compute_environment}"
        self.compute_environment = compute_environment
        self.shape = shape
        self.min_vcpus = min_vcpus
        self.max_vcpus = max_vcpus
        self.scaling_delay_ms = scaling_delay_ms
        self.instances: list[Instance] = []
        # Alive, up instances with a free vCPU, by launch order: the only ones placement looks at.
        self._open: SortedList = SortedList()
        self._launching = 0  # instances launched, not yet up
        # AWS Batch may pass maxvCpus by less than one instance to fit a job, never by more.
        self.max_instances = math.ceil(max_vcpus / shape.vcpus)
        self._alive = 0
        self._last_fit: tuple[Resources, int] | None = None

    # ----------------------------------------------------------------- the pool interface
    def could_ever_fit(self, need: Resources) -> bool:
        """Whether one instance of the type can hold ``need`` (else the job is parked as on AWS)."""
        shape = self.shape
        return need.vcpus <= shape.vcpus and need.memory_mib <= shape.memory_mib and need.gpus <= shape.gpus

    def has_free_vcpu(self) -> bool:
        return bool(self._open)

    def fits_now(self, need: Resources) -> bool:
        for index in self._open:
            instance = self.instances[index]
            if (
                need.vcpus <= instance.free_vcpus
                and need.memory_mib <= instance.free_memory
                and need.gpus <= instance.free_gpus
            ):
                self._last_fit = (need, index)
                return True
        return False

    def take(self, need: Resources) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Reserve ``need`` on the first instance that fits (the scheduler checked :meth:`fits_now`)."""
        if self._last_fit is not None and self._last_fit[0] == need:
            index = self._last_fit[1]
        else:
            if not self.fits_now(need):
                raise RuntimeError(f"{self.name}: take() without room for {need}")
            index = self._last_fit[1]  # type: ignore[index]
        self._last_fit = None
        instance = self.instances[index]
        used_vcpus = self.shape.vcpus - instance.free_vcpus
        used_gpus = self.shape.gpus - instance.free_gpus
        first_cpu = index * self.shape.vcpus + used_vcpus
        first_gpu = index * self.shape.gpus + used_gpus
        cpus = tuple(range(first_cpu, first_cpu + need.vcpus))
        gpus = tuple(range(first_gpu, first_gpu + need.gpus)) if need.gpus else ()
        instance.free_vcpus -= need.vcpus
        instance.free_memory -= need.memory_mib
        instance.free_gpus -= need.gpus
        instance.idle_since = None
        if instance.free_vcpus <= 0:
            self._open.discard(index)
        return cpus, gpus

    def reserve(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Never called: a simulation starts with no attempt in flight."""
        raise NotImplementedError("a simulated fleet has no attempts to adopt")

    def release(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Give an attempt's devices back to its instance (nothing, if the instance is gone).

        Device indices are counted, not tracked: the scheduler only needs how many are free, and an
        attempt's indices always lie in its instance's range, which is what says where it runs.
        """
        instance = self.instance_of(cpus)
        if instance is None or not instance.alive:
            return
        instance.free_vcpus += len(cpus)
        instance.free_memory += memory_mib
        instance.free_gpus += len(gpus)
        if instance.free_vcpus > 0 and instance.index not in self._open:
            self._open.add(instance.index)

    # ----------------------------------------------------------------- the fleet
    def instance_of(self, cpus: tuple[int, ...]) -> Instance | None:
        """The instance whose vCPUs these are."""
        return self.instances[cpus[0] // self.shape.vcpus] if cpus else None

    @property
    def alive_vcpus(self) -> int:
        """vCPUs launched and not released (up or still booting)."""
        return self._alive * self.shape.vcpus

    @property
    def launching(self) -> int:
        return self._launching

    def launch(self, now: int, count: int, up_now: bool = False) -> list[Instance]:
        """Launch ``count`` instances; they take jobs at ``now`` (``up_now``) or after the scaling delay."""
        launched = []
        up_now = up_now or self.scaling_delay_ms == 0
        for _ in range(count):
            up_at = now if up_now else now + self.scaling_delay_ms
            instance = Instance(
                len(self.instances), now, up_at, self.shape.vcpus, self.shape.memory_mib, self.shape.gpus
            )
            self.instances.append(instance)
            self._alive += 1
            if up_now:
                self._open.add(instance.index)
            else:
                self._launching += 1
            launched.append(instance)
        return launched

    def come_up(self, instance: Instance) -> None:
        """A launched instance has booted: it takes jobs from now on."""
        if not instance.alive:
            return
        self._launching -= 1
        self._open.add(instance.index)

    def release_instance(self, instance: Instance, now: int, interrupted: bool = False) -> None:
        """The instance is gone (scaled down or reclaimed): it holds nothing and takes nothing."""
        if not instance.alive:
            return
        if instance.up_at > now:
            self._launching -= 1
        instance.released_at = now
        instance.interrupted = interrupted
        self._alive -= 1
        self._open.discard(instance.index)
        self._last_fit = None

    def may_release(self) -> bool:
        """Whether releasing one instance keeps at least ``min_vcpus``."""
        return self.alive_vcpus - self.shape.vcpus >= self.min_vcpus

    def headroom(self) -> int:
        """How many more instances ``max_vcpus`` allows."""
        return max(0, self.max_instances - self._alive)

    def can_grow(self) -> bool:
        """Whether scaling could add capacity: below the maximum, or instances still booting."""
        return self._alive < self.max_instances or self._launching > 0

    def launching_vcpus(self) -> int:
        return self._launching * self.shape.vcpus

    def free_up_vcpus(self) -> int:
        return sum(self.instances[i].free_vcpus for i in self._open)
