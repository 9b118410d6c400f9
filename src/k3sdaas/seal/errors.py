"""Errors of the seal proof: a bad signature, or a challenge that is well signed but not acceptable."""

from __future__ import annotations

from typing import Literal

from ..errors import K3sdaasError

Reason = Literal["audience", "stale", "future", "format", "address"]


class SealError(K3sdaasError):
    """Base of the seal errors; messages say what is wrong and never carry key material."""


class BadSignature(SealError):
    """The serialized signature is malformed, of an unsupported scheme, or does not verify."""


class ChallengeInvalid(SealError):
    """The challenge cannot be parsed or must be refused.

    ``reason``: ``format`` (not a canonical challenge), ``audience`` (meant for another master),
    ``stale`` (issued too long ago), ``future`` (issued ahead of our clock beyond the allowed skew),
    ``address`` (signed by a key other than the address the challenge names).
    """

    def __init__(self, message: str, *, reason: Reason, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason: Reason = reason
