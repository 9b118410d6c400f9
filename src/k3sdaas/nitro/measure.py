"""Nitro PCR arithmetic: SHA-384 extend, EIF image measurements and runtime PCRs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PCR_BYTES = 48
ZERO_PCR = bytes(PCR_BYTES)


def extend(current: bytes, data: bytes) -> bytes:
    """PCR_new = SHA384(PCR_old || data), as the NSM's ExtendPCR does."""
    return hashlib.sha384(current + data).digest()


def measure_chunks(chunks: Iterable[bytes]) -> bytes:
    """nitro-cli's image PCRs: one extend of a zero PCR with SHA384 of the concatenated section data."""
    digest = hashlib.sha384()
    for chunk in chunks:
        digest.update(chunk)
    return extend(ZERO_PCR, digest.digest())


def measure_string(value: str | bytes) -> bytes:
    """Runtime PCR3 (IAM role ARN) and PCR4 (instance ID): the raw string is extended, not pre-hashed."""
    return extend(ZERO_PCR, value.encode() if isinstance(value, str) else value)
