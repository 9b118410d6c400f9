"""``ChainClient``: every operation on the k3s_daas package, over pysui's gRPC client.

Writes are programmable transactions built by pysui (``move_call`` asks the node for the function's
signature, so arguments are encoded as the package declares them). A token's stake record is read
directly: its ``Table`` entry is a dynamic-field object whose id is derived from the token id (see
:mod:`.pool`), one ``GetObject`` whatever the pool's size. Events (:mod:`.index`) serve history and
following changes: slash reasons, unstaked nodes.

Transactions of one client are sent one at a time: they share the signer's gas coins, and two
transactions built on the same coin version would make the second one stale.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Self

import pysui.sui.sui_common.sui_commands as cmd
import pysui.sui.sui_grpc.pgrpc_requests as rn
import pysui.sui.sui_grpc.suimsgs.sui.rpc.v2 as sui_prot
from pysui.sui.sui_bcs import bcs
from pysui.sui.sui_common.async_txn import AsyncSuiTransaction
from pysui.sui.sui_grpc.pgrpc_clients import GrpcProtocolClient
from pysui.sui.sui_grpc.pgrpc_filters import Literal, build_event_filter

from . import abi
from .amounts import MAX_U64, MIST_PER_SUI, format_sui
from .dynamic_fields import derive_dynamic_field_id, uleb128
from .errors import (
    AbortInfo,
    ChainError,
    InsufficientBalance,
    InsufficientStake,
    InvalidArgument,
    MoveAbortError,
    NotOwner,
    ObjectNotFound,
    RpcUnavailable,
    TransactionRejected,
    abort_error,
)
from .index import PoolIndex
from .keys import normalize_address
from .models import ChainEvent, Deployment, PoolState, SealToken, TxOutcome
from .pool import ID_TYPE, NODE_KEY_TYPE, StakeRecordEntry, decode_node_entry, decode_record, id_bcs, node_key_bcs
from .transport import RETRYABLE_STATUS, ChainSettings, build_pysui_client, ok_data, open_client, with_retries

# Gas a k3s_daas transaction costs on a real network is ~0.002-0.01 SUI; keep this much headroom
# when checking that the signer can pay a stake before building it.
GAS_HEADROOM_MIST = MIST_PER_SUI // 20
# Sui protocol limits (ProtocolConfig): a pure argument must be below 16 KiB, a signed transaction at most 128 KiB.
MAX_PURE_ARGUMENT_BYTES = 16 * 1024
MAX_TX_BYTES = 128 * 1024
ErrorKind = sui_prot.ExecutionErrorExecutionErrorKind


def encode_node_id(node_id: str | bytes) -> bytes:
    """The node id as the package stores it (``vector<u8>``, 1..64 bytes; text is UTF-8)."""
    raw = node_id.encode("utf-8") if isinstance(node_id, str) else bytes(node_id)
    if not 0 < len(raw) <= abi.MAX_NODE_ID_BYTES:
        raise InvalidArgument(
            f"node_id must be 1 to {abi.MAX_NODE_ID_BYTES} bytes, got {len(raw)}", field="node_id"
        )
    return raw


def pure_bytes(value: str | bytes, field: str) -> bytes:
    """A ``vector<u8>`` argument, refused before signing when its BCS (length prefix + bytes) reaches Sui's
    16 KiB ``max_pure_argument_size``: the node would reject the whole transaction."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    size = len(uleb128(len(raw))) + len(raw)
    if size >= MAX_PURE_ARGUMENT_BYTES:
        raise InvalidArgument(f"{field} is {len(raw)} bytes; a Sui transaction argument must stay below "
                              f"{MAX_PURE_ARGUMENT_BYTES} bytes (max_pure_argument_size)", field=field)
    return raw


def decode_node_id(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()


def json_value(value: Any) -> Any:
    """A ``google.protobuf.Value`` (object JSON, event JSON) as plain Python."""
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


# A publish transaction is at most 128 KiB on Sui; its JSON with base64 modules is well under this.
MAX_BUILD_OUTPUT_BYTES = 1 << 20


def load_build_output(path: str | Path) -> tuple[list[bytes], list[str]]:
    """Modules and dependencies from ``sui move build --dump-bytecode-as-base64`` output (JSON)."""
    source = Path(path)
    shown = f"build_output {str(path)!r:.200}"
    try:
        info = source.stat()
    except FileNotFoundError:
        raise InvalidArgument(f"{shown} does not exist", field="build_output") from None
    except OSError as exc:
        raise InvalidArgument(f"{shown} cannot be read: {exc.strerror}", field="build_output") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BUILD_OUTPUT_BYTES:
        raise InvalidArgument(f"{shown} must be a regular file of at most {MAX_BUILD_OUTPUT_BYTES} bytes",
                              field="build_output")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        modules = [base64.b64decode(m, validate=True) for m in data["modules"]]
        dependencies = [normalize_address(d, "dependencies") for d in data.get("dependencies", [])]
    except OSError as exc:
        raise InvalidArgument(f"{shown} cannot be read: {exc.strerror}", field="build_output") from None
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidArgument(
            f"{shown} is not `sui move build --dump-bytecode-as-base64` JSON: {exc}",
            field="build_output",
        ) from None
    if not modules:
        raise InvalidArgument(f"{shown} lists no modules", field="build_output")
    return modules, dependencies


def dump_build_output(modules: Sequence[bytes], dependencies: Sequence[str]) -> str:
    """The JSON ``load_build_output`` reads (``sui move build --dump-bytecode-as-base64`` format)."""
    return json.dumps({"modules": [base64.b64encode(m).decode() for m in modules],
                       "dependencies": list(dependencies), "digest": []})


class ChainClient:
    """Async client for one signer and (once known) one deployment of the package."""

    def __init__(self, settings: ChainSettings, deployment: Deployment | None = None, *, dry_run: bool = False
                 ) -> None:
        """``dry_run``: transactions are simulated by the node (SimulateTransaction) instead of executed;
        reads then see the objects the simulations wrote, so a dry run answers as the real run would."""
        self.settings = settings
        self.deployment = deployment
        self.dry_run = dry_run
        self._simulated: dict[str, sui_prot.Object | None] = {}  # dry run: object id -> as written (None: deleted)
        self._client: GrpcProtocolClient | None = None
        self._tx_lock = asyncio.Lock()
        self._token_cache: dict[str, tuple[float, SealToken]] = {}
        self._index: PoolIndex | None = None
        self._tables: dict[str, tuple[str, str]] = {}  # pool id -> (records table id, nodes table id)

    # ----- connection -----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.settings.signer.address

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Build the pysui client and read the protocol config (the first RPC)."""
        client = build_pysui_client(self.settings)

        async def init() -> None:
            await open_client(client, self.settings)  # reads the protocol config; under our timeout and retries

        try:
            await with_retries(self.settings, "connect", init)
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def pysui(self) -> GrpcProtocolClient:
        if self._client is None:
            raise ChainError("ChainClient is not connected; use `async with ChainClient(...)`")
        return self._client

    def _require_deployment(self) -> Deployment:
        if self.deployment is None:
            raise InvalidArgument("no deployment: give package_id (and pool_id) or publish first", field="package_id")
        return self.deployment

    async def _query(self, command: cmd.SuiCommand, what: str) -> Any:
        async def attempt() -> Any:
            return ok_data(await self.pysui.execute(command=command), what)

        return await with_retries(self.settings, what, attempt)

    # ----- plain reads ----------------------------------------------------------------------------

    async def balance(self, owner: str | None = None) -> int:
        """Total SUI (in MIST) owned by ``owner`` (default: the signer)."""
        data = await self._query(
            cmd.GetAddressCoinBalance(owner=owner or self.address), "balance of " + (owner or self.address)
        )
        return int(data.balance.balance or 0)

    async def get_object(self, object_id: str, *, field_name: str = "object_id") -> sui_prot.Object:
        oid = normalize_address(object_id, field_name)
        if oid in self._simulated:
            simulated = self._simulated[oid]
            if simulated is None:
                raise ObjectNotFound(f"object {oid} is deleted by the simulated transaction", field=field_name)
            return simulated
        try:
            obj = await self._query(cmd.GetObject(object_id=oid), f"read object {oid}")
        except ObjectNotFound:
            raise ObjectNotFound(f"object {oid} does not exist", field=field_name) from None
        if obj is None:
            raise ObjectNotFound(f"object {oid} does not exist", field=field_name)
        return obj

    async def owned_objects(self, object_type: str, owner: str | None = None) -> list[sui_prot.Object]:
        """Every object of ``object_type`` owned by ``owner`` (default: the signer), all pages."""
        owner = owner or self.address
        objects: list[sui_prot.Object] = []
        page: bytes | None = None
        while True:
            data = await self._query(
                cmd.GetObjectsForType(owner=owner, object_type=object_type, next_page_token=page),
                f"list {object_type} of {owner}",
            )
            objects.extend(data.objects)
            page = data.next_page_token
            if not page:
                return objects

    async def get_transaction(self, digest: str) -> sui_prot.ExecutedTransaction:
        data = await self._query(cmd.GetTransaction(digest=digest), f"read transaction {digest}")
        if data is None:
            raise ObjectNotFound(f"transaction {digest} does not exist", field="digest")
        return data

    # ----- transactions ---------------------------------------------------------------------------

    async def _transact(self, what: str, build: Callable[[Any], Awaitable[None]]) -> TxOutcome:
        """Build, sign and execute one transaction (simulate it, in a dry run); a Move abort becomes its typed
        error."""
        async with self._tx_lock:
            if self.dry_run:
                return await self.simulate(what, build)
            return await self.submit(await self.sign(what, build), what)

    async def simulate(self, what: str, build: Callable[[Any], Awaitable[None]]) -> TxOutcome:
        """Run the transaction on the node without committing it (``SimulateTransaction``, the node choosing
        gas): the node's own checks and execution decide, so failures are the real run's typed errors.
        The objects it would write are remembered and read back by this client."""

        async def attempt() -> sui_prot.SimulateTransactionResponse:
            txn = await self._transaction()
            await build(txn)
            try:
                kind = await txn.raw_kind()
            except ValueError as exc:
                raise self._build_error(what, exc) from None
            request = rn.SimulateTransactionKind(transaction=kind, sender=self.address)
            return ok_data(await self.pysui.execute_grpc_request(request=request), what)

        try:
            response = await with_retries(self.settings, what, attempt)
        except TransactionRejected as exc:
            raise self._rejection(what, str(exc)) from None
        executed = response.transaction
        if executed is None:
            raise ChainError(f"{what}: the node's simulation returned no transaction")
        outcome = self._outcome(what, executed)
        for obj in executed.objects.objects if executed.objects else []:  # inputs too, on some nodes: keep the newest
            oid = normalize_address(obj.object_id or "", "object_id")
            known = self._simulated.get(oid)
            if known is None or (obj.version or 0) >= (known.version or 0):
                self._simulated[oid] = obj
        self._simulated.update(dict.fromkeys(outcome.deleted))
        self._token_cache.clear()
        return outcome

    async def _transaction(self) -> Any:
        """A new pysui transaction. pysui 1.5.1 caches ``move_call`` signatures in one class-wide LRU keyed by
        the (mutable) transaction itself: keys never hit across transactions, and once it holds 256 entries
        evicting one raises KeyError. Emptying it first keeps a long-lived client working."""
        AsyncSuiTransaction._function_meta_args.cache_clear()
        return await self.pysui.transaction()

    async def sign(self, what: str, build: Callable[[Any], Awaitable[None]]) -> dict[str, Any]:
        """Build and sign a transaction without sending it (``tx_bytestr`` and ``sig_array``)."""

        async def build_signed() -> dict[str, Any]:
            txn = await self._transaction()
            await build(txn)
            try:
                signed: dict[str, Any] = await txn.build_and_sign()
            except ValueError as exc:
                raise self._build_error(what, exc) from None
            size = len(base64.b64decode(signed["tx_bytestr"])) + sum(len(base64.b64decode(s))
                                                                    for s in signed["sig_array"])
            if size > MAX_TX_BYTES:
                raise InvalidArgument(f"{what}: the signed transaction is {size} bytes, above Sui's "
                                      f"{MAX_TX_BYTES} (max_tx_size_bytes)")
            return signed

        return await with_retries(self.settings, what, build_signed)

    async def submit(self, signed: dict[str, Any], what: str) -> TxOutcome:
        """Execute signed bytes; identical bytes are idempotent on a node, so a retry cannot execute twice."""

        async def execute() -> sui_prot.ExecutedTransaction:
            return ok_data(await self.pysui.execute(command=cmd.ExecuteTransaction(**signed)), what)

        try:
            executed = await with_retries(self.settings, what, execute)
        except TransactionRejected as exc:
            raise self._rejection(what, str(exc)) from None
        self._token_cache.clear()
        return self._outcome(what, executed)

    def _rejection(self, what: str, text: str) -> ChainError:
        """A transaction the node refused before executing it. Sui answers these with a message only, so
        they are told apart by Sui's own ``UserInputError`` texts."""
        if "Dependent package not found on-chain" in text:
            return ObjectNotFound(f"{what}: the package is not published on this network: {text}", field="package_id")
        if "Could not find the referenced object" in text:
            return ObjectNotFound(f"{what}: {text}")
        if "Balance of gas object" in text or "Gas budget:" in text:
            return InsufficientBalance(f"{what}: {self.address} cannot pay for gas: {text}")
        if "Size limit exceeded" in text:
            return InvalidArgument(f"{what}: the transaction is over a Sui protocol limit: {text}")
        if "not owned by" in text:
            return NotOwner(f"{what}: the node refused: {text}", field="key_file")
        return TransactionRejected(f"{what}: the node refused the transaction: {text}")

    def _build_error(self, what: str, exc: ValueError) -> ChainError:
        """pysui reports failed RPCs during a build as ValueError text; recover what kind of failure it was."""
        text = str(exc)
        if any(status.name in text for status in RETRYABLE_STATUS):
            return RpcUnavailable(f"{what}: {text}")
        if "Unresolvable target" in text:
            return ObjectNotFound(f"{what}: the package has no such function ({text}); check package_id",
                                  field="package_id")
        if "INVALID_ARGUMENT" in text or "Could not find" in text or "not owned by" in text:
            return self._rejection(what, text)
        if "not found" in text.lower() or "inaccessible" in text:
            return ObjectNotFound(f"{what}: {text}")
        if "gas" in text.lower() or "balance" in text.lower() or "coin" in text.lower():
            return InsufficientBalance(f"{what}: {self.address} cannot pay for gas: {text}")
        return ChainError(f"{what}: building the transaction failed: {text}")

    def _outcome(self, what: str, executed: sui_prot.ExecutedTransaction) -> TxOutcome:
        effects = executed.effects
        status = effects.status if effects else None
        if effects is None or status is None or not status.success:
            raise self._execution_error(what, status.error if status else None)
        created = _created(effects)
        deleted = [change.object_id or "" for change in effects.changed_objects
                   if change.id_operation == sui_prot.ChangedObjectIdOperation.DELETED]
        events = [self._event(e, executed.digest or "") for e in (executed.events.events if executed.events else [])]
        gas = effects.gas_used
        used = (gas.computation_cost or 0) + (gas.storage_cost or 0) - (gas.storage_rebate or 0) if gas else 0
        return TxOutcome(executed.digest or "", created, deleted, events, used)

    def _execution_error(self, what: str, error: sui_prot.ExecutionError | None) -> ChainError:
        if error is None:
            return ChainError(f"{what}: transaction failed without an error description")
        abort = error.abort
        if abort is not None and abort.abort_code is not None:
            location = abort.location
            module = location.module if location and location.module else ""
            function = location.function_name if location and location.function_name else ""
            ours = self.deployment is not None and location is not None and location.package is not None \
                and normalize_address(location.package) == self.deployment.package_id
            if not ours:  # an abort in the framework: its codes mean something else
                return MoveAbortError(f"{what}: {location.package if location else '?'}::{module}::{function} "
                                      f"aborted with code {abort.abort_code}",
                                      abort=AbortInfo(module, function, abort.abort_code, ""))
            return abort_error(module, function, abort.abort_code, what)
        description = error.description or str(error.kind)
        if error.kind in (ErrorKind.INSUFFICIENT_COIN_BALANCE, ErrorKind.INSUFFICIENT_GAS):
            return InsufficientBalance(f"{what}: {description}", field="amount")
        argument = error.command_argument_error
        if error.kind == ErrorKind.COMMAND_ARGUMENT_ERROR and argument is not None:
            kind = argument.kind.name if argument.kind is not None else "unknown"
            return InvalidArgument(f"{what}: argument {argument.argument} of command {error.command} refused "
                                   f"({kind}): {description}")
        return ChainError(f"{what}: execution failed: {description}")

    @staticmethod
    def _event(event: sui_prot.Event, digest: str, cursor: str | None = None, checkpoint: int | None = None
               ) -> ChainEvent:
        return ChainEvent(
            event_type=event.event_type or "",
            module=event.module or "",
            sender=event.sender or "",
            fields=json_value(event.json) or {},
            tx_digest=digest,
            checkpoint=checkpoint,
            cursor=cursor,
        )

    def _target(self, module: str, function: str) -> str:
        return abi.target(self._require_deployment().package_id, module, function)

    # ----- package and pool -----------------------------------------------------------------------

    async def publish(self, modules: Sequence[bytes], dependencies: Sequence[str]) -> Deployment:
        """Publish the package; ``init`` creates the pool, the registry and the AdminCap."""

        async def build(txn: Any) -> None:
            cap = txn.builder.publish([list(m) for m in modules], [bcs.Address.from_str(d) for d in dependencies])
            await txn.transfer_objects(transfers=[cap], recipient=self.address)

        outcome = await self._transact("publish package", build)
        caps = outcome.created_of("::package::UpgradeCap")
        if not caps:
            raise ChainError(f"publish {outcome.digest} created no UpgradeCap")
        package_id = json_value((await self.get_object(caps[0])).json)["package"]
        self.deployment = self._deployment_from(package_id, outcome.created, caps[0])
        return self.deployment

    @staticmethod
    def _deployment_from(package_id: str, created: dict[str, list[str]], upgrade_cap: str | None) -> Deployment:
        def one(suffix: str) -> str | None:
            ids = [oid for t, oids in created.items() if t == f"{package_id}{suffix}" for oid in oids]
            return ids[0] if ids else None

        pool, registry = one("::staking::StakePool"), one("::registry::EnclaveRegistry")
        if not pool or not registry:
            raise ObjectNotFound(f"package {package_id} was not published with a StakePool and an EnclaveRegistry",
                                 field="package_id")
        return Deployment(package_id, pool, registry, one("::staking::AdminCap"), upgrade_cap)

    async def resolve_deployment(self, package_id: str) -> Deployment:
        """The pool, registry and AdminCap created when ``package_id`` was published."""
        package_id = normalize_address(package_id, "package_id")
        package = await self.get_object(package_id, field_name="package_id")
        digest = package.previous_transaction
        if not digest:
            raise ObjectNotFound(f"{package_id} has no publishing transaction; is it a package?", field="package_id")
        executed = await self.get_transaction(digest)
        if executed.effects is None:
            raise ChainError(f"the node returned publishing transaction {digest} without its effects")
        created = _created(executed.effects)
        caps = [cap for cap in await self.owned_objects(abi.UPGRADE_CAP_TYPE)
                if json_value(cap.json).get("package") == package_id]
        self.deployment = self._deployment_from(package_id, created, caps[0].object_id if caps else None)
        return self.deployment

    async def find_deployment(self) -> Deployment | None:
        """The newest k3s_daas deployment whose UpgradeCap the signer holds, if any."""
        for cap in sorted(await self.owned_objects(abi.UPGRADE_CAP_TYPE), key=lambda o: o.version or 0, reverse=True):
            package_id = json_value(cap.json).get("package")
            try:
                return await self.resolve_deployment(package_id)
            except ObjectNotFound:
                continue  # an UpgradeCap of some other package
        return None

    async def _pool_fields(self) -> dict[str, Any]:
        """The StakePool's fields as JSON."""
        pool_id = self._require_deployment().pool_id
        pool = await self.get_object(pool_id, field_name="pool_id")
        if not (pool.object_type or "").endswith("::staking::StakePool"):
            raise InvalidArgument(f"{pool_id} is a {pool.object_type}, not a StakePool", field="pool_id")
        fields: dict[str, Any] = json_value(pool.json) or {}
        return fields

    async def pool_state(self) -> PoolState:
        fields = await self._pool_fields()
        return PoolState(
            pool_id=self._require_deployment().pool_id,
            token_ttl_ms=int(fields["token_ttl_ms"]),
            unstake_cooldown_ms=int(fields["unstake_cooldown_ms"]),
            staked_total_mist=int(_balance_value(fields["staked"])),
            penalties_total_mist=int(_balance_value(fields["penalties"])),
        )

    async def configure_pool(self, token_ttl_ms: int | None = None, unstake_cooldown_ms: int | None = None
                             ) -> TxOutcome:
        """Set the token lifetime and/or the unstake cooldown in one transaction (AdminCap holder)."""
        if token_ttl_ms is not None and token_ttl_ms <= 0:
            raise InvalidArgument("token_ttl_ms must be positive", field="token_ttl_ms")
        if unstake_cooldown_ms is not None and unstake_cooldown_ms < 0:
            raise InvalidArgument("unstake_cooldown_ms cannot be negative", field="unstake_cooldown_ms")
        calls = [(f, v) for f, v in (("set_token_ttl", token_ttl_ms), ("set_unstake_cooldown", unstake_cooldown_ms))
                 if v is not None]
        if not calls:
            raise InvalidArgument("nothing to configure: give token_ttl_ms or unstake_cooldown_ms",
                                  field="token_ttl_ms")
        return await self._admin_calls("configure pool", [(f, [v]) for f, v in calls])

    async def _admin_cap(self) -> str:
        deployment = self._require_deployment()
        caps = await self.owned_objects(abi.target(deployment.package_id, abi.STAKING, "AdminCap"))
        if not caps:
            raise NotOwner(f"{self.address} holds no AdminCap of package {deployment.package_id}", field="key_file")
        return caps[0].object_id or ""

    async def _admin_call(self, function: str, args: list[Any], module: str = abi.STAKING,
                          shared: str | None = None) -> TxOutcome:
        return await self._admin_calls(f"{module}::{function}", [(function, args)], module, shared)

    async def _admin_calls(self, what: str, calls: list[tuple[str, list[Any]]], module: str = abi.STAKING,
                           shared: str | None = None) -> TxOutcome:
        """One transaction calling each ``(function, args)`` with the shared object and the AdminCap first."""
        deployment = self._require_deployment()
        cap = await self._admin_cap()

        async def build(txn: Any) -> None:
            for function, args in calls:
                await txn.move_call(target=self._target(module, function),
                                    arguments=[shared or deployment.pool_id, cap, *args])

        return await self._transact(what, build)

    # ----- SealTokens -----------------------------------------------------------------------------

    async def sync(self, *, until_digest: str | None = None) -> PoolIndex:
        """Bring the pool index up to date; with ``until_digest``, until that transaction's events are in.

        A full node indexes events shortly after execution, so the wait is bounded by the timeout.
        """
        deployment = self._require_deployment()
        if self._index is None or self._index.pool_id != deployment.pool_id:
            self._index = PoolIndex(deployment.pool_id)
        index = self._index
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.timeout
        while True:
            async for event in self.events(module=abi.STAKING, after=index.cursor):
                index.apply(event)
                index.cursor = event.cursor or index.cursor
            if until_digest is None or until_digest in index.seen_digests or loop.time() > give_up:
                return index
            await asyncio.sleep(0.05)

    async def chain_time_ms(self) -> int:
        """The chain's clock (``0x6``), which decides expiry on chain."""
        clock = await self.get_object(abi.CLOCK_ID, field_name="clock")
        return int(json_value(clock.json)["timestamp_ms"])

    async def _pool_tables(self) -> tuple[str, str]:
        """The ids of the pool's ``records`` and ``nodes`` tables (fixed at the pool's creation: read once)."""
        pool_id = self._require_deployment().pool_id
        if pool_id not in self._tables:
            fields = await self._pool_fields()
            self._tables[pool_id] = (normalize_address(fields["records"]["id"], "pool_id"),
                                     normalize_address(fields["nodes"]["id"], "pool_id"))
        return self._tables[pool_id]

    async def _table_entry(self, table_id: str, key_type: str, key_bcs: bytes) -> bytes | None:
        """The BCS contents of the table's entry for the key, or None when the table has no such key."""
        field_id = derive_dynamic_field_id(table_id, key_type, key_bcs)
        if field_id in self._simulated:  # a dry run wrote (or deleted) this entry
            written = self._simulated[field_id]
            return None if written is None or written.contents is None else bytes(written.contents.value or b"")
        request = rn.GetObject(object_id=field_id, field_mask=["object_id", "object_type", "contents"])

        async def attempt() -> Any:
            return ok_data(await self.pysui.execute_grpc_request(request=request), f"read table entry {field_id}")

        try:
            found = await with_retries(self.settings, f"read table entry {field_id}", attempt)
        except ObjectNotFound:
            return None
        obj = found.object if isinstance(found, sui_prot.GetObjectResponse) else found
        if obj is None or obj.contents is None or obj.contents.value is None:
            raise ChainError(f"the node returned table entry {field_id} without its BCS contents")
        return bytes(obj.contents.value)

    async def _record(self, token_id: str) -> StakeRecordEntry | None:
        records, _ = await self._pool_tables()
        contents = await self._table_entry(records, ID_TYPE, id_bcs(token_id))
        return None if contents is None else decode_record(contents)

    async def token_for_node(self, node_id: str | bytes) -> str | None:
        """The live SealToken id of ``node_id`` in the pool, or None."""
        raw = encode_node_id(node_id)
        _, nodes = await self._pool_tables()
        contents = await self._table_entry(nodes, NODE_KEY_TYPE, node_key_bcs(raw))
        return None if contents is None else decode_node_entry(contents)

    async def find_token(self, node_id: str | bytes) -> SealToken | None:
        token_id = await self.token_for_node(node_id)
        return await self.get_token(token_id) if token_id else None

    async def get_token(self, token_id: str, *, max_age: float = 0.0) -> SealToken:
        """The token and its record. ``max_age`` > 0 allows a cached answer that young (seconds)."""
        token_id = normalize_address(token_id, "token_id")
        loop = asyncio.get_running_loop()
        cached = self._token_cache.get(token_id)
        if max_age > 0 and cached and loop.time() - cached[0] <= max_age:
            return cached[1]
        record, now = await asyncio.gather(self._record(token_id), self.chain_time_ms())
        if record is None:
            raise ObjectNotFound(f"token {token_id} has no stake record in pool {self._require_deployment().pool_id}",
                                 field="token_id")
        token = SealToken(
            token_id=token_id,
            node_id=decode_node_id(record.node_id),
            owner=record.owner,
            pool_id=self._require_deployment().pool_id,
            stake_mist=record.amount,
            tier=record.tier,
            expires_at_ms=record.expires_at_ms,
            valid=record.tier >= 1 and now < record.expires_at_ms,
            slashed_total_mist=record.slashed_total,
            chain_time_ms=now,
        )
        self._token_cache[token_id] = (loop.time(), token)
        return token

    async def slash_reasons(self, token_id: str) -> list[str]:
        """The reasons the token was slashed for, oldest first."""
        record = (await self.sync()).records.get(normalize_address(token_id, "token_id"))
        return [r.decode("utf-8", "replace") for r in record.slash_reasons] if record else []

    async def node_was_unstaked(self, node_id: str | bytes) -> bool:
        """Whether ``node_id`` held a token in this pool that was unstaked (and has none now)."""
        return encode_node_id(node_id) in (await self.sync()).retired_nodes


    async def _own_token(self, token_id: str) -> SealToken:
        token = await self.get_token(token_id)
        if token.owner != self.address:
            raise NotOwner(f"token {token_id} is owned by {token.owner}, not by the signer {self.address}",
                           field="key_file")
        return token

    async def _check_can_pay(self, amount_mist: int) -> None:
        balance = await self.balance()
        if balance < amount_mist + GAS_HEADROOM_MIST:
            raise InsufficientBalance(
                f"{self.address} holds {format_sui(balance)}; {format_sui(amount_mist)} plus gas is needed",
                field="amount",
            )

    async def stake(self, node_id: str | bytes, amount_mist: int, owner: str | None = None,
                    token_ttl_ms: int | None = None) -> SealToken:
        """Stake ``amount_mist`` for ``node_id``; the minted SealToken goes to ``owner`` (default: signer).

        ``token_ttl_ms`` gives this token a lifetime of its own instead of the pool's (a short-lived grant, a
        test identity, a token that is already expired); it needs the pool's AdminCap, held by the signer.
        A token's lifetime is the pool's when it is minted, so one transaction sets the pool's lifetime, stakes
        and mints, and sets the lifetime back to the value read from the pool just before: transactions on the
        shared pool are sequenced, so no other token is minted with the short lifetime. (An admin's change of
        the pool's lifetime between that read and this transaction would be undone: pysui declares the pool
        immutable for a getter called first in the transaction, so the value cannot be read inside it. Its
        owner can still refresh the token, which gives it the pool's lifetime.)
        """
        deployment = self._require_deployment()
        raw = encode_node_id(node_id)
        recipient = normalize_address(owner, "owner") if owner else self.address
        if amount_mist < abi.MIN_STAKE_MIST:
            raise InsufficientStake(
                f"stake {format_sui(amount_mist)} is below the {format_sui(abi.MIN_STAKE_MIST)} minimum", field="amount"
            )
        if token_ttl_ms is not None and (isinstance(token_ttl_ms, bool) or not isinstance(token_ttl_ms, int)
                                         or not 0 < token_ttl_ms <= MAX_U64):
            raise InvalidArgument(f"token_ttl_ms must be an integer from 1 to {MAX_U64} (milliseconds), "
                                  f"got {token_ttl_ms!r:.40}", field="token_ttl_ms")
        await self._check_can_pay(amount_mist)
        target = self._target(abi.STAKING, "stake_and_mint_seal")
        set_ttl = self._target(abi.STAKING, "set_token_ttl")
        lifetime: tuple[str, int, int] | None = None  # (AdminCap, this token's lifetime, the pool's)
        if token_ttl_ms is not None:
            cap = await self._admin_cap()  # NotOwner naming key_file, before anything is built
            lifetime = (cap, token_ttl_ms, (await self.pool_state()).token_ttl_ms)

        async def build(txn: Any) -> None:
            if lifetime:
                await txn.move_call(target=set_ttl, arguments=[deployment.pool_id, lifetime[0], lifetime[1]])
            coin = await txn.split_coin(coin=txn.gas, amounts=[amount_mist])
            await txn.move_call(target=target, arguments=[deployment.pool_id, coin, raw, recipient, abi.CLOCK_ID])
            if lifetime:
                await txn.move_call(target=set_ttl, arguments=[deployment.pool_id, lifetime[0], lifetime[2]])

        outcome = await self._transact(f"stake for node {decode_node_id(raw)}", build)
        tokens = outcome.created_of("::staking::SealToken")
        if not tokens:
            raise ChainError(f"stake transaction {outcome.digest} minted no SealToken")
        return await self.get_token(tokens[0])

    async def add_stake(self, token_id: str, amount_mist: int) -> SealToken:
        deployment = self._require_deployment()
        token_id = normalize_address(token_id, "token_id")
        await self._check_can_pay(amount_mist)
        target = self._target(abi.STAKING, "add_stake")

        async def build(txn: Any) -> None:
            coin = await txn.split_coin(coin=txn.gas, amounts=[amount_mist])
            await txn.move_call(target=target, arguments=[deployment.pool_id, token_id, coin, abi.CLOCK_ID])

        await self._transact(f"add stake to {token_id}", build)
        return await self.get_token(token_id)

    async def refresh(self, token_id: str) -> SealToken:
        """Extend the token's expiry to now + the pool's TTL (owner only)."""
        deployment = self._require_deployment()
        await self._own_token(token_id)
        target = self._target(abi.STAKING, "refresh_seal_token")

        async def build(txn: Any) -> None:
            await txn.move_call(target=target, arguments=[deployment.pool_id, token_id, abi.CLOCK_ID])

        await self._transact(f"refresh {token_id}", build)
        return await self.get_token(token_id)

    async def unstake(self, token_id: str) -> int:
        """Unstake (owner only); the remaining stake goes to the staker. Returns the MIST paid out."""
        deployment = self._require_deployment()
        token = await self._own_token(token_id)
        target = self._target(abi.STAKING, "unstake")

        async def build(txn: Any) -> None:
            await txn.move_call(target=target, arguments=[deployment.pool_id, token.token_id, abi.CLOCK_ID])

        outcome = await self._transact(f"unstake {token.token_id}", build)
        paid = [e for e in outcome.events if e.name == "Unstaked"]
        return int(paid[0].fields["amount"]) if paid else 0

    async def slash(self, token_id: str, bps: int, reason: str | bytes) -> SealToken:
        """Slash ``bps`` basis points of the token's stake into the pool's penalties (AdminCap holder)."""
        token_id = normalize_address(token_id, "token_id")
        if not 1 <= bps <= abi.MAX_BPS:
            raise InvalidArgument(f"bps must be 1..{abi.MAX_BPS}, got {bps}", field="bps")
        reason_raw = pure_bytes(reason, "reason")
        await self._admin_call("slash", [token_id, bps, reason_raw, abi.CLOCK_ID])
        return await self.get_token(token_id)

    # ----- enclave registry and audit anchors -----------------------------------------------------

    async def update_pcrs(self, pcr0: bytes, pcr1: bytes, pcr2: bytes) -> TxOutcome:
        for index, pcr in enumerate((pcr0, pcr1, pcr2)):
            if len(pcr) != abi.PCR_BYTES:
                raise InvalidArgument(f"pcr{index} must be {abi.PCR_BYTES} bytes, got {len(pcr)}", field=f"pcr{index}")
        deployment = self._require_deployment()
        return await self._admin_call("update_pcrs", [pcr0, pcr1, pcr2], module=abi.REGISTRY,
                                      shared=deployment.registry_id)

    async def register_enclave(self, attestation_document: bytes) -> TxOutcome:
        """``load_nitro_attestation`` then ``register_enclave``, in one transaction (permissionless)."""
        deployment = self._require_deployment()
        attestation_document = pure_bytes(attestation_document, "attestation_document")
        target = self._target(abi.REGISTRY, "register_enclave")

        async def build(txn: Any) -> None:
            document = await txn.move_call(target=abi.NITRO_LOAD, arguments=[attestation_document, abi.CLOCK_ID])
            await txn.move_call(target=target, arguments=[deployment.registry_id, document, abi.CLOCK_ID])

        return await self._transact("register enclave", build)

    async def anchor_audit_batch(
        self, merkle_root: bytes, count: int, first_seq: int, last_seq: int, timestamp_ms: int, signature: bytes
    ) -> TxOutcome:
        deployment = self._require_deployment()
        if len(merkle_root) != 32:
            raise InvalidArgument("merkle_root must be 32 bytes", field="merkle_root")
        if count <= 0 or count != last_seq - first_seq + 1:
            raise InvalidArgument("count must equal last_seq - first_seq + 1", field="count")
        target = self._target(abi.GATEWAY, "anchor_audit_batch")

        async def build(txn: Any) -> None:
            await txn.move_call(
                target=target,
                arguments=[deployment.registry_id, merkle_root, count, first_seq, last_seq, timestamp_ms,
                           signature, abi.CLOCK_ID],
            )

        return await self._transact("anchor audit batch", build)

    # ----- events ---------------------------------------------------------------------------------

    async def events(self, names: Sequence[str] = (), *, module: str = abi.STAKING, after: str | None = None,
                     page_size: int = 1000) -> AsyncIterator[ChainEvent]:
        """Events of one module of the package (only those named ``names``, if given), oldest first,
        resuming after the ``after`` cursor. Pages are read whole, so a retry never repeats an event."""
        package_id = self._require_deployment().package_id
        if names:
            terms = [[Literal("event_type", abi.event_type(package_id, module, n))] for n in names]
        else:
            terms = [[Literal("emit_module", f"{package_id}::{module}")]]
        cursor = after
        while True:

            async def page(start: str | None = cursor) -> list[sui_prot.ListEventsResponse]:
                options = sui_prot.QueryOptions(limit=page_size, after=base64.b64decode(start) if start else None)
                result = await self.pysui.execute_grpc_request(
                    request=rn.ListEvents(event_filter=build_event_filter(terms=terms), options=options)
                )
                return [item async for item in ok_data(result, "list events")]

            more = False
            for item in await with_retries(self.settings, "list events", page):
                more = more or bool(item.end and item.end.reason == sui_prot.QueryEndReason.ITEM_LIMIT)
                if item.event is None:
                    continue
                watermark = item.watermark
                cursor = base64.b64encode(watermark.cursor).decode() if watermark and watermark.cursor else cursor
                yield self._event(item.event, item.event.transaction_digest or "", cursor,
                                  watermark.checkpoint if watermark else None)
            if not more:
                return


def _created(effects: sui_prot.TransactionEffects) -> dict[str, list[str]]:
    """Ids of the objects a transaction created, by type."""
    created: dict[str, list[str]] = {}
    for change in effects.changed_objects:
        if change.id_operation == sui_prot.ChangedObjectIdOperation.CREATED:
            created.setdefault(change.object_type or "", []).append(change.object_id or "")
    return created


def _balance_value(value: Any) -> Any:
    """``Balance<T>`` renders as its value (string); some nodes nest it as ``{"value": ...}``."""
    return value["value"] if isinstance(value, dict) else value
