"""The chain: genesis, executing and simulating transactions, committing checkpoints, the faucet."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import base58
from cryptography import x509
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas.chain.dynamic_fields import derive_dynamic_field_id

from . import gas as gasmodel
from . import packages as pkgs
from . import proto
from .executor import Executor, Outcome
from .movetypes import CLOCK_ID, COIN_TYPE, FIELD_TYPE, FRAMEWORK, normalize_address
from .objects import Layouts, LiveObject, Owner, decode_value, object_digest, to_bcs
from .ptb import MAX_TX_SIZE_BYTES, InvalidTransaction, TxRequest, decode_transaction_bcs, signer_address
from .state import ChainState, CheckpointRow, EventRow, now_ms

SYSTEM_ADDRESS = "0x" + "0" * 64


def _b58_hash(*parts: bytes) -> str:
    return base58.b58encode(hashlib.blake2b(b"".join(parts), digest_size=32).digest()).decode()


@dataclass(frozen=True)
class Funded:
    """A faucet payment: the system transaction and the coin it created."""

    digest: str
    coin_id: str


@dataclass(frozen=True)
class NodeConfig:
    """``nitro_root`` verifies attestation documents (None: AWS Nitro root)."""

    reference_gas_price: int = gasmodel.REFERENCE_GAS_PRICE
    nitro_root: x509.Certificate | None = None


class Ledger:
    """All chain logic over one :class:`ChainState`.

    Use one Ledger per thread; other threads and processes open their own on the same directory
    (SQLite serialises their writes, and every read goes to the database).
    """

    def __init__(self, state_dir: Path, config: NodeConfig | None = None) -> None:
        self.state = ChainState(state_dir)
        self.config = config or NodeConfig()
        self._package_cache: dict[str, pkgs.LoadedPackage] = {}
        self._layout_cache: dict[tuple[str, ...], Layouts] = {}
        with self.state.write():
            if self.state.get_meta("chain_id") is None:
                self._genesis()
            self._migrate_tables()

    def close(self) -> None:
        self.state.close()

    # Identity -----------------------------------------------------------------------------------
    @property
    def chain_id(self) -> str:
        return self.state.get_meta("chain_id") or ""

    def now_ms(self) -> int:
        return now_ms(self.state)

    def advance_clock(self, ms: int) -> int:
        """Move the chain clock forward (tests of expiry, cooldowns, staleness); returns the new time."""
        if ms < 0:
            raise ValueError("the clock only moves forward")
        with self.state.write():
            offset = int(self.state.get_meta("clock_offset_ms") or 0) + ms
            self.state.set_meta("clock_offset_ms", str(offset))
        return self.now_ms()

    def _genesis(self) -> None:
        self.state.set_meta("chain_id", base58.b58encode(os.urandom(32)).decode())
        self.state.set_meta("genesis_ms", str(now_ms(self.state)))
        clock = LiveObject(CLOCK_ID, f"{FRAMEWORK}::clock::Clock", {"id": CLOCK_ID, "timestamp_ms": 0},
                           Owner("SHARED", initial_shared_version=1), version=1)
        clock.digest = object_digest(CLOCK_ID, 1, "genesis")
        self.state.put_object(clock)
        self.state.put_package(FRAMEWORK, "sui")
        seq0 = CheckpointRow(0, _b58_hash(b"checkpoint", b"genesis", self.chain_id.encode()), now_ms(self.state), None)
        self.state.put_checkpoint(seq0)

    def _migrate_tables(self) -> None:
        """Move inline Table entries of an older state out into dynamic-field objects (at their derived ids,
        at the parent's version), so a chain survives the stand-in's upgrade."""
        layouts = self.layouts()
        for object_id, type_str, version, previous, raw in self.state.legacy_table_rows():
            for name, field_type in layouts.get(type_str, []):
                table = raw.get(name)
                if field_type.base != "Table" or not isinstance(table, dict) or "entries" not in table:
                    continue
                key_type, value_type = field_type.args
                for key, value in (decode_value(k) for k in table["entries"]):
                    field_id = derive_dynamic_field_id(table["$table"], key_type.render(), to_bcs(key, key_type, {}))
                    entry = LiveObject(field_id, f"{FIELD_TYPE}<{key_type.render()}, {value_type.render()}>",
                                       {"id": field_id, "name": key, "value": value},
                                       Owner("OBJECT", address=table["$table"]), version=version,
                                       digest=object_digest(field_id, version, previous), previous_transaction=previous)
                    entry.storage_rebate = gasmodel.object_storage_cost(entry)
                    self.state.put_object(entry)
                raw[name] = {"$table": table["$table"], "size": len(table["entries"])}
            self.state.put_raw_fields(object_id, raw)

    # Packages and layouts -------------------------------------------------------------------------
    def _load_package(self, package_id: str, name: str) -> pkgs.LoadedPackage:
        return pkgs.load(package_id, name, self.config.nitro_root)

    def loaded_packages(self) -> dict[str, pkgs.LoadedPackage]:
        """Published packages (another process may have published since the last call)."""
        for pid, name in self.state.packages():
            if pid not in self._package_cache:
                self._package_cache[pid] = self._load_package(pid, name)
        return dict(self._package_cache)

    def layouts(self, extra: list[pkgs.LoadedPackage] | None = None) -> Layouts:
        """Layouts of every published package, plus ``extra`` (published by a transaction not committed)."""
        packages = list(self.loaded_packages().values()) + (extra or [])
        key = tuple(sorted(p.package_id for p in packages))
        if key not in self._layout_cache:
            self._layout_cache[key] = pkgs.layouts_for(packages)
        return self._layout_cache[key]

    def package(self, package_id: str) -> pkgs.LoadedPackage | None:
        return self.loaded_packages().get(normalize_address(package_id))

    # Objects ---------------------------------------------------------------------------------------
    def get_object(self, object_id: str) -> LiveObject | None:
        obj = self.state.get_object(normalize_address(object_id))
        if obj is not None and obj.id == CLOCK_ID:
            obj.fields["timestamp_ms"] = self.now_ms()
        return obj

    # Transactions -----------------------------------------------------------------------------------
    def _run(self, request: TxRequest) -> Outcome:
        executor = Executor(
            self.state, self.loaded_packages(), request, now_ms=self.now_ms(),
            reference_gas_price=self.config.reference_gas_price, package_loader=self._load_package,
        )
        return executor.run()

    def simulate(self, tx: TxRequest) -> rpc.SimulateTransactionResponse:
        """Run without signature checks or commit; report effects and each command's return values."""
        outcome = self._run(tx)
        layouts = self.layouts(outcome.published)
        executed = proto.executed_transaction(
            outcome, layouts, effects_digest=_b58_hash(b"effects", outcome.digest.encode()),
            checkpoint=None, timestamp_ms=None, signatures=[],
        )
        return rpc.SimulateTransactionResponse(
            transaction=executed, command_outputs=proto.command_outputs(outcome, layouts) if outcome.success else [],
            suggested_gas_price=self.config.reference_gas_price,
        )

    def execute(self, tx_bytes: bytes, signatures: list[bytes]) -> rpc.ExecutedTransaction:
        """Verify, execute and commit; resubmitting the same bytes returns the first result."""
        size = len(tx_bytes) + sum(len(sig) for sig in signatures)  # the signed transaction, as Sui measures it
        if size > MAX_TX_SIZE_BYTES:
            raise InvalidTransaction(f"Size limit exceeded: serialized transaction size exceeded maximum of "
                                     f"{MAX_TX_SIZE_BYTES} is {size}")
        request = decode_transaction_bcs(tx_bytes)
        if not signatures:
            raise InvalidTransaction("transaction has no signature")
        signers = {signer_address(sig, tx_bytes) for sig in signatures}
        if signers != {request.sender}:
            raise InvalidTransaction(f"signature is by {sorted(signers)}, transaction sender is {request.sender}")
        with self.state.write():
            stored = self.state.get_transaction(request.digest)
            if stored is not None:
                return rpc.ExecutedTransaction.parse(stored)
            outcome = self._run(request)
            return self._commit(outcome, signatures)

    def _commit(self, outcome: Outcome, signatures: list[bytes]) -> rpc.ExecutedTransaction:
        latest = self.state.latest_checkpoint()
        assert latest is not None
        sequence = latest.sequence_number + 1
        stamp = self.now_ms()
        for obj in outcome.written:
            self.state.put_object(obj)
        for object_id in outcome.deleted:
            self.state.delete_object(object_id)
        for pkg in outcome.published:
            self.state.put_package(pkg.package_id, pkg.name)
        layouts = self.layouts()
        executed = proto.executed_transaction(
            outcome, layouts, effects_digest=_b58_hash(b"effects", outcome.digest.encode()),
            checkpoint=sequence, timestamp_ms=stamp, signatures=signatures,
        )
        # executed_transaction renders exactly one proto event per emitted event (an empty
        # TransactionEvents is falsy), so the lengths always match.
        proto_events = executed.events.events if executed.events else []
        for index, (emitted, ev) in enumerate(zip(outcome.events, proto_events, strict=True)):
            self.state.put_event(EventRow(sequence, index, outcome.digest, emitted.event_type, outcome.request.sender,
                                          emitted.package_id, emitted.module, bytes(ev)))
        self.state.put_transaction(outcome.digest, sequence, outcome.request.sender, bytes(executed))
        digest = _b58_hash(b"checkpoint", sequence.to_bytes(8, "little"), outcome.digest.encode(),
                           latest.digest.encode())
        self.state.put_checkpoint(CheckpointRow(sequence, digest, stamp, outcome.digest))
        return executed

    def transaction(self, digest: str) -> rpc.ExecutedTransaction | None:
        stored = self.state.get_transaction(digest)
        return None if stored is None else rpc.ExecutedTransaction.parse(stored)

    # Faucet ---------------------------------------------------------------------------------------------
    def fund(self, address: str, amount: int) -> Funded:
        """Mint a fresh ``Coin<SUI>`` of ``amount`` MIST to ``address`` as a system transaction."""
        if amount <= 0:
            raise ValueError("faucet amount must be positive")
        recipient = normalize_address(address)
        with self.state.write():
            latest = self.state.latest_checkpoint()
            assert latest is not None
            # The faucet's inputs (recipient, amount, chain tip) make its digest unique.
            pure = [bytes.fromhex(recipient[2:]), amount.to_bytes(8, "little"), latest.digest.encode()]
            request = TxRequest(
                sender=SYSTEM_ADDRESS,
                ptb=rpc.ProgrammableTransaction(inputs=[rpc.Input(kind=rpc.InputInputKind.PURE, pure=b) for b in pure]),
                gas=None,
            )
            coin_id = "0x" + hashlib.blake2b(request.digest.encode(), digest_size=32).hexdigest()
            version = latest.sequence_number + 1
            coin = LiveObject(coin_id, COIN_TYPE, {"id": coin_id, "balance": amount},
                              Owner("ADDRESS", address=recipient), version=version,
                              digest=object_digest(coin_id, version, request.digest),
                              previous_transaction=request.digest, has_public_transfer=True)
            coin.storage_rebate = gasmodel.object_storage_cost(coin)
            outcome = Outcome(
                digest=request.digest, request=request, lamport_version=version, success=True, error=None,
                failed_command=None, charge=gasmodel.GasCharge(0, 0, 0, 0), gas_object_id="", before={},
                written=[coin], created={coin_id}, deleted=[], read_only_shared=[], events=[],
                balance_changes={recipient: amount},
            )
            self._commit(outcome, [])
        return Funded(request.digest, coin_id)


def advance_clock(state_dir: Path, ms: int) -> int:
    """:meth:`Ledger.advance_clock` from any process that can reach ``state_dir``."""
    ledger = Ledger(state_dir)
    try:
        return ledger.advance_clock(ms)
    finally:
        ledger.close()
