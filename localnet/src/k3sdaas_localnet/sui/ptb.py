"""Transactions as received: BCS ``TransactionData`` (execute) or structured proto (simulate).

Both become one :class:`TxRequest` whose programmable transaction is in proto form; the BCS side is
decoded with pysui's own BCS classes and converted with their ``to_grpc_*`` methods.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pysui.sui.sui_bcs import bcs
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from .movetypes import MoveTypeError, normalize_address

ED25519_FLAG = 0x00
# Sui protocol limits (ProtocolConfig max_pure_argument_size, max_tx_size_bytes).
MAX_PURE_ARGUMENT_SIZE = 16 * 1024
MAX_TX_SIZE_BYTES = 128 * 1024
_INTENT_TRANSACTION = bytes([0, 0, 0])


class InvalidTransaction(ValueError):
    """Rejected before execution (answered as gRPC INVALID_ARGUMENT, as a full node does)."""


@dataclass(frozen=True)
class GasSpec:
    payment: list[tuple[str, int, str]]  # (object id, version, digest)
    owner: str
    price: int
    budget: int


@dataclass(frozen=True)
class TxRequest:
    sender: str
    ptb: rpc.ProgrammableTransaction
    gas: GasSpec | None
    expiration_epoch: int | None = None
    bcs: bytes | None = None

    @property
    def digest(self) -> str:
        """Real Sui transaction digest for BCS transactions; a stable stand-in for proto-only ones."""
        data = b"TransactionData::" + self.bcs if self.bcs is not None else bytes(self.ptb) + self.sender.encode()
        return base58.b58encode(hashlib.blake2b(data, digest_size=32).digest()).decode()


def _input_to_proto(arg: bcs.CallArg) -> rpc.Input:
    if arg.enum_name == "Pure":
        return rpc.Input(kind=rpc.InputInputKind.PURE, pure=bytes(arg.value))
    if arg.enum_name == "Object":
        return arg.value.value.to_grpc_input(arg.value.enum_name)
    raise InvalidTransaction(f"input kind {arg.enum_name} is not supported by the local node")


def decode_transaction_bcs(data: bytes) -> TxRequest:
    """Decode signed-over ``TransactionData`` bytes."""
    try:
        tx = bcs.TransactionData.deserialize(data)
    except Exception as exc:  # noqa: BLE001 - canoser raises assorted exception types on bad bytes
        raise InvalidTransaction(f"transaction bcs does not decode: {exc}") from None
    v1 = tx.value
    kind = v1.TransactionKind
    if kind.enum_name != "ProgrammableTransaction":
        raise InvalidTransaction(f"transaction kind {kind.enum_name} is not allowed for users")
    ptb = rpc.ProgrammableTransaction(
        inputs=[_input_to_proto(i) for i in kind.value.Inputs],
        commands=[c.value.to_grpc_command() for c in kind.value.Command],
    )
    gas = v1.GasData
    expiration = v1.TransactionExpiration
    return TxRequest(
        sender=v1.Sender.to_address_str(),
        ptb=ptb,
        gas=GasSpec(
            payment=[(r.ObjectID.to_address_str(), r.SequenceNumber, r.ObjectDigest.to_digest_str())
                     for r in gas.Payment],
            owner=gas.Owner.to_address_str(),
            price=gas.Price,
            budget=gas.Budget,
        ),
        expiration_epoch=expiration.value if expiration.enum_name == "Epoch" else None,
        bcs=bytes(data),
    )


def request_from_proto(tx: rpc.Transaction) -> TxRequest:
    """A simulate request: BCS when given, else the structured kind + sender (gas optional)."""
    if tx.bcs is not None and tx.bcs.value:
        return decode_transaction_bcs(tx.bcs.value)
    if tx.kind is None or tx.kind.programmable_transaction is None:
        raise InvalidTransaction("transaction.kind.programmable_transaction is required")
    if not tx.sender:
        raise InvalidTransaction("transaction.sender is required")
    try:
        sender = normalize_address(tx.sender)
    except MoveTypeError as exc:
        raise InvalidTransaction(f"transaction.sender: {exc}") from None
    gas = None
    if tx.gas_payment is not None and tx.gas_payment.objects:
        gp = tx.gas_payment
        gas = GasSpec([(o.object_id or "", o.version or 0, o.digest or "") for o in gp.objects], gp.owner or sender,
                      gp.price or 0, gp.budget or 0)
    return TxRequest(sender=sender, ptb=tx.kind.programmable_transaction, gas=gas)


def signer_address(signature: bytes, tx_bytes: bytes) -> str:
    """Verify one ``flag‖sig‖pubkey`` signature over the transaction intent; return the signer's address."""
    if len(signature) != 1 + 64 + 32 or signature[0] != ED25519_FLAG:
        raise InvalidTransaction("only single ed25519 signatures (97 bytes, flag 0x00) are supported")
    sig, pubkey = signature[1:65], signature[65:]
    digest = hashlib.blake2b(_INTENT_TRANSACTION + tx_bytes, digest_size=32).digest()
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(sig, digest)
    except (InvalidSignature, ValueError):
        raise InvalidTransaction("signature does not verify against the transaction") from None
    return "0x" + hashlib.blake2b(bytes([ED25519_FLAG]) + pubkey, digest_size=32).hexdigest()
