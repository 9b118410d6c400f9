"""k3sdaas.chain: the only code that talks to Sui (pysui 1.5.1 gRPC client, k3s_daas package ABI)."""

from __future__ import annotations

from .amounts import MIST_PER_SUI, format_sui, mist_to_sui, parse_amount, sui_to_mist
from .client import ChainClient, dump_build_output, encode_node_id, load_build_output
from .errors import (
    AbortInfo,
    AlreadyStaked,
    ChainError,
    CooldownActive,
    InsufficientBalance,
    InsufficientStake,
    InvalidAddress,
    InvalidAmount,
    InvalidArgument,
    InvalidKey,
    MoveAbortError,
    NotOwner,
    ObjectNotFound,
    RpcUnavailable,
    TokenExpired,
    TransactionRejected,
)
from .events import CursorStore, read_new_events
from .keys import Signer, load_signer, normalize_address
from .models import ChainEvent, Deployment, PoolState, SealToken, TxOutcome
from .transport import ChainSettings

__all__ = [
    "MIST_PER_SUI", "AbortInfo", "AlreadyStaked", "ChainClient", "ChainError", "ChainEvent", "ChainSettings",
    "CooldownActive", "CursorStore", "Deployment", "InsufficientBalance", "InsufficientStake", "InvalidAddress",
    "InvalidAmount", "InvalidArgument", "InvalidKey", "MoveAbortError", "NotOwner", "ObjectNotFound", "PoolState",
    "RpcUnavailable", "SealToken", "Signer", "TokenExpired", "TransactionRejected", "TxOutcome", "dump_build_output",
    "encode_node_id", "format_sui", "load_build_output", "load_signer", "mist_to_sui", "normalize_address",
    "parse_amount", "read_new_events", "sui_to_mist",
]
