"""Typed errors of the chain client, each a subclass of the runtime's family in ``k3sdaas.errors``.

A Move abort becomes the error its meaning calls for (an ``EStakeTooLow`` is an
:class:`InsufficientStake`), carrying the abort's module, function, code and name in ``abort``.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3sdaas.errors import InvalidInput, K3sdaasError, NotFound, Unavailable

from .abi import ABORT_CODES


@dataclass(frozen=True)
class AbortInfo:
    module: str
    function: str
    code: int
    name: str

    def __str__(self) -> str:
        return f"{self.module}::{self.function} aborted with {self.name or 'code'} ({self.code})"


class ChainError(K3sdaasError):
    """Base of the chain client's errors; ``abort`` is set when a Move abort caused it."""

    def __init__(self, message: str, *, field: str | None = None, abort: AbortInfo | None = None) -> None:
        super().__init__(message, field=field)
        self.abort = abort


class InvalidAmount(ChainError, InvalidInput):
    """An amount that is not a positive whole number of MIST."""


class InvalidAddress(ChainError, InvalidInput):
    """Not a 0x-prefixed 64-hex Sui address or object id."""


class InvalidKey(ChainError, InvalidInput):
    """The private key (file or text) does not parse."""


class InvalidArgument(ChainError, InvalidInput):
    """Any other argument the package refuses (node id length, bps, ttl, PCR length...)."""


class ObjectNotFound(ChainError, NotFound):
    """The object (package, pool, token, cap) does not exist on chain."""


class NotOwner(ChainError):
    """The signer does not own the object the operation needs (a SealToken, the AdminCap)."""


class InsufficientStake(ChainError, InvalidInput):
    """The stake is below what the operation or tier requires."""


class InsufficientBalance(ChainError, InvalidInput):
    """The signer's SUI balance cannot pay the amount plus gas."""


class TokenExpired(ChainError):
    """The SealToken's expiry has passed (or is nearer than required)."""


class AlreadyStaked(ChainError):
    """The node already has a live SealToken."""


class CooldownActive(ChainError):
    """Unstaking before the pool's cooldown has run."""


class MoveAbortError(ChainError):
    """A Move abort without a more specific meaning (e.g. an attestation mismatch)."""


class TransactionRejected(ChainError):
    """The node refused the transaction before executing it (bad signature, stale object version, ...)."""


class RpcUnavailable(ChainError, Unavailable):
    """The Sui RPC endpoint did not answer (refused, reset, TLS failure, timeout)."""


# Abort name -> (error class, the option a caller should fix).
_ABORT_MEANING: dict[str, tuple[type[ChainError], str | None]] = {
    "EStakeTooLow": (InsufficientStake, "amount"),
    "EStakeBelowMinimum": (InsufficientStake, "amount"),
    "EInvalidNodeId": (InvalidArgument, "node_id"),
    "ENodeAlreadyStaked": (AlreadyStaked, "node_id"),
    "ETokenNotFound": (ObjectNotFound, "token_id"),
    "ECooldownActive": (CooldownActive, None),
    "EInvalidBps": (InvalidArgument, "bps"),
    "EInvalidTtl": (InvalidArgument, "token_ttl"),
    "EZeroAmount": (InvalidAmount, "amount"),
    "EWrongPool": (InvalidArgument, "pool_id"),
    "EInsufficientPenalties": (InsufficientBalance, "amount"),
    "EInvalidPcrLength": (InvalidArgument, "pcrs"),
    "EDebugPcrs": (InvalidArgument, "pcrs"),
    "ETokenInvalid": (TokenExpired, "token_id"),
    "ETierTooLow": (InsufficientStake, None),
    "EInvalidBatch": (InvalidArgument, None),
}


def abort_error(module: str, function: str, code: int, detail: str = "") -> ChainError:
    """The typed error for abort ``code`` raised in ``module::function`` of our package."""
    name = ABORT_CODES.get(module, {}).get(code, "")
    info = AbortInfo(module, function, code, name)
    cls, field = _ABORT_MEANING.get(name, (MoveAbortError, None))
    message = str(info) + (f": {detail}" if detail else "")
    return cls(message, field=field, abort=info)
