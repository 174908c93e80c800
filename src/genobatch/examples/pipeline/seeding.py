"""Random streams: one independent, reproducible generator per (run seed, purpose, sample)."""

from __future__ import annotations

import zlib

import numpy as np


def generator(seed: int, purpose: str, sample: int = 0) -> np.random.Generator:
    """A generator for ``purpose`` (e.g. ``"genome"``, ``"truth"``, ``"reads"``) of ``sample`` under ``seed``.

    SeedSequence mixes the three into statistically independent streams, so sample 3's reads do not depend on how
    many samples the run has, and the genome does not change when the read simulator draws more numbers. The purpose
    is hashed with CRC-32 rather than ``hash()`` because string hashing is salted per process.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(purpose.encode()), sample]))
