"""Pools: the capacity compute environments draw on.

Local compute environments slice one host (:class:`HostPool`): each vCPU and each GPU goes to at
most one running attempt (CPU affinity and ``CUDA_VISIBLE_DEVICES`` enforce it), and memory is
reserved, not oversubscribed. Several compute environments may draw on the same pool.

A compute environment on a remote engine (Slurm, AWS Batch) has a :class:`CountedPool` of its own:
the engine places jobs on its nodes, so no device indices are handed out, and what genobatch hands
it at once is capped by the environment's ``maxvCpus`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from genobatch.core.job import Resources


@dataclass(slots=True)
class HostPool:
    """Free and total devices of one host (or one backend's capacity)."""

    name: str
    cpus: tuple[int, ...]
    memory_mib: int
    gpus: tuple[int, ...] = ()
    free_cpus: list[int] = field(default_factory=list)
    free_gpus: list[int] = field(default_factory=list)
    free_memory_mib: int = 0

    def __post_init__(self) -> None:
        self.free_cpus = sorted(self.cpus)
        self.free_gpus = sorted(self.gpus)
        self.free_memory_mib = self.memory_mib

    def could_ever_fit(self, need: Resources) -> bool:
        """Whether an idle pool could hold ``need`` at all."""
        return need.vcpus <= len(self.cpus) and need.memory_mib <= self.memory_mib and need.gpus <= len(self.gpus)

    def has_free_vcpu(self) -> bool:
        return bool(self.free_cpus)

    def fits_now(self, need: Resources) -> bool:
        return (
            need.vcpus <= len(self.free_cpus)
            and need.memory_mib <= self.free_memory_mib
            and need.gpus <= len(self.free_gpus)
        )

    def take(self, need: Resources) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Reserve ``need`` (caller checked :meth:`fits_now`); return the cpu and gpu indices."""
        cpus, self.free_cpus = tuple(self.free_cpus[: need.vcpus]), self.free_cpus[need.vcpus :]
        gpus, self.free_gpus = tuple(self.free_gpus[: need.gpus]), self.free_gpus[need.gpus :]
        self.free_memory_mib -= need.memory_mib
        return cpus, gpus

    def reserve(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Reserve specific devices again (an attempt adopted after a restart)."""
        self.free_cpus = [c for c in self.free_cpus if c not in cpus]
        self.free_gpus = [g for g in self.free_gpus if g not in gpus]
        self.free_memory_mib -= memory_mib

    def release(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Give an attempt's devices back."""
        self.free_cpus = sorted(set(self.free_cpus).union(c for c in cpus if c in self.cpus))
        self.free_gpus = sorted(set(self.free_gpus).union(g for g in gpus if g in self.gpus))
        self.free_memory_mib = min(self.memory_mib, self.free_memory_mib + memory_mib)


@dataclass(slots=True)
class CountedPool:
    """The capacity of a remote engine: counted, never indexed; the remote engine places jobs.

    It holds whatever its compute environment's ``maxvCpus`` lets through; whether one node can
    hold a job is the remote engine's to say (it refuses what no node can run).
    """

    name: str

    def could_ever_fit(self, need: Resources) -> bool:
        return True

    def has_free_vcpu(self) -> bool:
        return True

    def fits_now(self, need: Resources) -> bool:
        return True

    def take(self, need: Resources) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (), ()

    def reserve(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Nothing to reserve: the compute environment counts the vCPUs."""

    def release(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Nothing to give back: the compute environment counts the vCPUs."""


class Pool(Protocol):
    """What placement asks of any capacity: a host's devices, a remote engine's count, or the
    simulator's fleet of instances (:mod:`genobatch.simulate.fleet`)."""

    name: str

    def could_ever_fit(self, need: Resources) -> bool:
        """Whether the pool, idle, could hold ``need`` at all."""

    def has_free_vcpu(self) -> bool:
        """Whether a 1-vCPU job could start now."""

    def fits_now(self, need: Resources) -> bool:
        """Whether ``need`` fits in what is free now."""

    def take(self, need: Resources) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Reserve ``need``; return the cpu and gpu indices handed out (empty where counted)."""

    def reserve(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Reserve an adopted attempt's devices again."""

    def release(self, cpus: tuple[int, ...], gpus: tuple[int, ...], memory_mib: int) -> None:
        """Give an attempt's devices back."""
