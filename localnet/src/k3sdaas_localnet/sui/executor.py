"""Runs one programmable transaction against the state: input checks, commands, gas, effects.

Nothing is written here; :mod:`ledger` commits an :class:`Outcome` (or only reports it, for a
simulation). Mutable inputs are working copies, so a failed transaction is undone by reloading.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from . import gas as gasmodel
from .handlers.base import CallContext, ExecutionFailure, MoveAbort, MoveFunction
from .movetypes import (
    CLOCK_ID,
    COIN_TYPE,
    FRAMEWORK,
    MoveType,
    MoveTypeError,
    decode_pure,
    normalize_address,
    parse_type,
)
from .objects import LiveObject, Owner, PureBytes, StructValue, object_digest
from .packages import LoadedPackage
from .ptb import MAX_PURE_ARGUMENT_SIZE, GasSpec, InvalidTransaction, TxRequest
from .publish import PublishError, parse_markers
from .state import EPOCH, ChainState

_PURE_STRUCTS = ("ID", "String", "Option")
# The budget a simulation without gas payment runs with: enough for any k3s_daas transaction, and no more
# than the client's gas headroom, so a stake split from the gas coin decides in simulation as for real.
MAX_SIMULATION_BUDGET = 50_000_000


@dataclass
class EmittedEvent:
    package_id: str
    module: str
    event_type: str
    fields: dict[str, Any]


@dataclass
class Outcome:
    """Everything the ledger needs to build effects and commit."""

    digest: str
    request: TxRequest
    lamport_version: int
    success: bool
    error: ExecutionFailure | MoveAbort | None
    failed_command: int | None
    charge: gasmodel.GasCharge
    gas_object_id: str
    before: dict[str, LiveObject]
    written: list[LiveObject]
    created: set[str]
    deleted: list[str]
    read_only_shared: list[LiveObject]
    events: list[EmittedEvent]
    balance_changes: dict[str, int]
    published: list[LoadedPackage] = field(default_factory=list)
    # Per command: (type, value) of each result, for a simulation's command outputs.
    command_results: list[list[tuple[MoveType, Any]]] = field(default_factory=list)


def _check_version(object_id: str, version: int, digest: str | None, obj: LiveObject) -> None:
    """An owned input must name the live version (UserInputError::ObjectVersionUnavailableForConsumption)."""
    if obj.version != version or (digest and obj.digest != digest):
        raise InvalidTransaction(f"Object ID {object_id} Version {version:#x} Digest {digest} is not available for "
                                 f"consumption, current version: {obj.version:#x}")


def _is_pure(t: MoveType) -> bool:
    if t.name in ("bool", "u8", "u16", "u32", "u64", "u128", "u256", "address"):
        return True
    if t.name == "vector":
        return _is_pure(t.args[0])
    return t.base in _PURE_STRUCTS and t.name.startswith(("0x" + "0" * 63 + "1::", FRAMEWORK + "::object::")) \
        and all(_is_pure(a) for a in t.args)


def _strip_ref(t: MoveType) -> MoveType:
    return MoveType(t.name, t.args)


def _coin_balances(objects: list[LiveObject]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for obj in objects:
        if obj.type == COIN_TYPE and obj.owner is not None and obj.owner.kind == "ADDRESS":
            totals[obj.owner.address or ""] = totals.get(obj.owner.address or "", 0) + obj.fields["balance"]
    return totals


class Executor:
    """One transaction's run; also the :class:`~.handlers.base.Runtime` its handlers see."""

    def __init__(
        self,
        state: ChainState,
        packages: dict[str, LoadedPackage],
        request: TxRequest,
        *,
        now_ms: int,
        reference_gas_price: int,
        package_loader: Callable[[str, str], LoadedPackage],
    ) -> None:
        self.state = state
        self.packages = dict(packages)
        self.request = request
        self.sender = request.sender
        self.tx_digest = request.digest
        self.now_ms = now_ms
        self.rgp = reference_gas_price
        self.package_loader = package_loader
        self._id_counter = 0
        self._type_params: set[str] = set()
        # Inputs as loaded (``before``) and the working copies commands change (``live``).
        self.before: dict[str, LiveObject] = {}
        self.live: dict[str, LiveObject] = {}
        self.inputs: list[Any] = []
        self.owned_inputs: set[str] = set()
        self.shared_mutable: set[str] = set()
        self.read_only: set[str] = set()
        self.gas_ids: list[str] = []
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.mutated: set[str] = set()  # objects written besides the inputs: dynamic fields touched by &mut
        self.events: list[EmittedEvent] = []
        self.results: list[list[Any]] = []
        self.result_types: list[list[MoveType]] = []
        self.published: list[LoadedPackage] = []

    # Runtime protocol -------------------------------------------------------------------------
    def fresh_id(self) -> str:
        seed = self.tx_digest.encode() + self._id_counter.to_bytes(8, "little")
        self._id_counter += 1
        return "0x" + hashlib.blake2b(seed, digest_size=32).hexdigest()

    def add_object(self, obj: LiveObject) -> None:
        self.live[obj.id] = obj
        self.created.add(obj.id)

    def delete_object(self, obj: LiveObject) -> None:
        self._require_writable(obj)
        self.deleted.add(obj.id)

    def mark_mutated(self, obj: LiveObject) -> None:
        self._require_writable(obj)
        self.mutated.add(obj.id)

    def child(self, object_id: str) -> LiveObject | None:
        """A dynamic field (child object), loaded from the state on first access as Sui's object runtime does."""
        if object_id in self.deleted:
            return None
        if object_id not in self.live:
            obj = self.state.get_object(object_id)
            if obj is None:
                return None
            self.before[object_id] = copy.deepcopy(obj)
            self.live[object_id] = obj
        return self.live[object_id]

    def emit_event(self, package: str, module: str, event_type: str, fields: dict[str, Any]) -> None:
        self.events.append(EmittedEvent(package, module, event_type, dict(fields)))

    def _require_writable(self, obj: LiveObject) -> None:
        if obj.id in self.read_only:
            raise ExecutionFailure("INVALID_OBJECT_BY_MUT_REF", f"object {obj.id} is not mutable in this transaction")

    # Input validation -------------------------------------------------------------------------
    def _load(self, object_id: str, version: int | None) -> LiveObject:
        """An input; ``version`` is the one an owned input or gas coin names (None for shared inputs)."""
        obj = self.state.get_object(object_id)
        if obj is None:  # Sui's UserInputError::ObjectNotFound
            named = "None" if version is None else f"Some(SequenceNumber({version}))"
            raise InvalidTransaction(f"Could not find the referenced object {object_id} at version {named}")
        if obj.id == CLOCK_ID:
            obj.fields["timestamp_ms"] = self.now_ms
        return obj

    def _load_inputs(self) -> None:
        for index, inp in enumerate(self.request.ptb.inputs):
            what = f"input {index}"
            kind = inp.kind
            if kind == rpc.InputInputKind.PURE:
                pure = bytes(inp.pure or b"")
                if len(pure) >= MAX_PURE_ARGUMENT_SIZE:  # CallArg::validity_check: strictly below the limit
                    raise InvalidTransaction(
                        f"Size limit exceeded: maximum pure argument size is {MAX_PURE_ARGUMENT_SIZE}")
                self.inputs.append(PureBytes(pure))
                continue
            try:
                object_id = normalize_address(inp.object_id or "")
            except MoveTypeError as exc:
                raise InvalidTransaction(f"{what}: {exc}") from None
            owned = kind == rpc.InputInputKind.IMMUTABLE_OR_OWNED
            obj = self._load(object_id, (inp.version or 0) if owned else None)
            if obj.owned_by.kind == "OBJECT":
                raise InvalidTransaction(f"Object {object_id} is owned by object {obj.owned_by.address}. Objects "
                                         "owned by other objects cannot be used as input arguments")
            if owned:
                _check_version(object_id, inp.version or 0, inp.digest, obj)
                if obj.owned_by.kind == "ADDRESS":
                    if obj.owned_by.address != self.sender:
                        raise InvalidTransaction(f"{what}: object {object_id} is not owned by the sender")
                    self.owned_inputs.add(object_id)
                elif obj.owned_by.kind == "IMMUTABLE":
                    self.read_only.add(object_id)
                else:
                    raise InvalidTransaction(f"{what}: object {object_id} is shared; pass it as a shared input")
            elif kind == rpc.InputInputKind.SHARED:
                if obj.owned_by.kind != "SHARED" or obj.owned_by.initial_shared_version != inp.version:
                    raise InvalidTransaction(
                        f"{what}: object {object_id} is not shared with initial version {inp.version}"
                    )
                (self.shared_mutable if inp.mutable else self.read_only).add(object_id)
            else:
                raise InvalidTransaction(f"{what}: input kind {kind} is not supported by the local node")
            self.before[object_id] = copy.deepcopy(obj)
            self.live[object_id] = obj
            self.inputs.append(obj)

    def _check_packages(self) -> None:
        """Every MoveCall's package is an input Sui loads before execution: a missing one refuses the
        transaction (no gas charged), with ``kind.object_not_found_error()``'s DependentPackageNotFound."""
        for command in self.request.ptb.commands:
            if command.move_call is not None:
                try:
                    package_id = normalize_address(command.move_call.package or "")
                except MoveTypeError as exc:
                    raise InvalidTransaction(f"move call package: {exc}") from None
                if package_id not in self.packages:
                    raise InvalidTransaction(f"Dependent package not found on-chain: {package_id}")

    def _select_gas(self) -> GasSpec:
        """For simulation without gas payment: the sender's SUI coins not used as inputs."""
        coins = [
            c for c in self.state.owned_objects(self.sender, COIN_TYPE, "", 256)
            if c.id not in self.before
        ]
        if not coins:
            raise InvalidTransaction(f"sender {self.sender} owns no SUI coins to pay gas")
        total = sum(c.fields["balance"] for c in coins)
        return GasSpec([(c.id, c.version, c.digest) for c in coins], self.sender, self.rgp,
                       min(total, MAX_SIMULATION_BUDGET))

    def _load_gas(self, gas: GasSpec) -> None:
        if gas.owner != self.sender:
            raise InvalidTransaction("sponsored transactions are not supported by the local node (gas owner != sender)")
        if not gas.payment:
            raise InvalidTransaction("gas payment is empty")
        if gas.price < self.rgp:
            raise InvalidTransaction(f"gas price {gas.price} is below the reference gas price {self.rgp}")
        if gas.budget < gasmodel.computation_cost(gas.price):  # UserInputError::GasBudgetTooLow
            minimum = gasmodel.computation_cost(gas.price)
            raise InvalidTransaction(f"Gas budget: {gas.budget} is lower than min: {minimum}")
        if gas.budget > gasmodel.MAX_TX_GAS:
            raise InvalidTransaction(f"gas budget {gas.budget} exceeds max_tx_gas {gasmodel.MAX_TX_GAS}")
        total = 0
        for raw_id, version, digest in gas.payment:
            object_id = normalize_address(raw_id)
            coin = self._load(object_id, version)
            if coin.type != COIN_TYPE:
                raise InvalidTransaction(f"gas payment {object_id} is not a Coin<SUI>")
            _check_version(object_id, version, digest, coin)
            if coin.owned_by.kind != "ADDRESS" or coin.owned_by.address != self.sender:
                raise InvalidTransaction(f"gas payment {object_id} is not owned by the sender")
            if object_id in self.live:
                raise InvalidTransaction(f"gas payment {object_id} is also a transaction input")
            self.before[object_id] = copy.deepcopy(coin)
            self.live[object_id] = coin
            self.gas_ids.append(object_id)
            total += coin.fields["balance"]
        if total < gas.budget:  # UserInputError::GasBalanceTooLow
            raise InvalidTransaction(f"Balance of gas object {total} is lower than the needed amount: {gas.budget}")
        self.gas = gas

    def _reset_working_set(self) -> None:
        self.live = {oid: copy.deepcopy(obj) for oid, obj in self.before.items()}
        self.inputs = [self.live[i.id] if isinstance(i, LiveObject) else i for i in self.inputs]
        self.created = set()
        self.deleted = set()
        self.mutated = set()
        self.events = []
        self.results = []
        self.result_types = []
        self.published = []

    def _smash_gas(self) -> None:
        """Merge all gas coins into the first, as Sui does before running the commands."""
        primary = self.live[self.gas_ids[0]]
        for other in self.gas_ids[1:]:
            primary.fields["balance"] += self.live[other].fields["balance"]
            self.deleted.add(other)

    # Running ----------------------------------------------------------------------------------
    def run(self) -> Outcome:
        if self.request.expiration_epoch is not None and self.request.expiration_epoch < EPOCH:
            raise InvalidTransaction(f"transaction expired at epoch {self.request.expiration_epoch}")
        self._check_packages()
        self._load_inputs()
        self._load_gas(self.request.gas or self._select_gas())
        lamport = 1 + max(o.version for o in self.before.values())
        self._reset_working_set()
        self._smash_gas()
        error: ExecutionFailure | MoveAbort | None = None
        failed_command: int | None = None
        try:
            for index, command in enumerate(self.request.ptb.commands):
                failed_command = index
                types, values = self._command(command)
                self.result_types.append(types)
                self.results.append(values)
            failed_command = None
            self._check_unused()
        except (MoveAbort, ExecutionFailure) as exc:
            error = exc
        charge = self._charge()
        if error is None and charge.computation_cost + charge.storage_cost > self.gas.budget:
            error = ExecutionFailure("INSUFFICIENT_GAS", "gas budget is below the transaction's cost")
        if error is not None:
            self._reset_working_set()
            self._smash_gas()
            charge = self._charge()
            charge = gasmodel.GasCharge(min(charge.computation_cost, self.gas.budget), charge.storage_cost,
                                        charge.storage_rebate, charge.non_refundable_storage_fee)
        return self._outcome(lamport, error, failed_command, charge)

    def _written(self) -> list[LiveObject]:
        ids = (self.owned_inputs | self.shared_mutable | set(self.gas_ids) | self.created | self.mutated) - self.deleted
        return [self.live[i] for i in sorted(ids)]

    def _charge(self) -> gasmodel.GasCharge:
        touched = self.owned_inputs | self.shared_mutable | set(self.gas_ids) | self.mutated | self.deleted
        released = [self.before[i].storage_rebate for i in touched if i in self.before]
        return gasmodel.charge(self.gas.price, self._written(), released)

    def _outcome(self, lamport: int, error: ExecutionFailure | MoveAbort | None, failed_command: int | None,
                 charge: gasmodel.GasCharge) -> Outcome:
        gas_coin = self.live[self.gas_ids[0]]
        gas_coin.fields["balance"] -= charge.net
        written = self._written()
        for obj in written:
            if obj.owner is not None and obj.owner.kind == "SHARED" and obj.owner.initial_shared_version is None:
                obj.owner.initial_shared_version = lamport
            obj.version = lamport
            obj.previous_transaction = self.tx_digest
            obj.digest = object_digest(obj.id, lamport, self.tx_digest)
            obj.storage_rebate = gasmodel.object_storage_cost(obj)
        deleted = sorted(i for i in self.deleted if i in self.before)
        before_coins = [self.before[i] for i in set(self.before) if i not in self.read_only]
        after = _coin_balances(written)
        prior = _coin_balances(before_coins)
        changes = {a: after.get(a, 0) - prior.get(a, 0) for a in set(after) | set(prior)}
        return Outcome(
            digest=self.tx_digest,
            request=self.request,
            lamport_version=lamport,
            success=error is None,
            error=error,
            failed_command=failed_command,
            charge=charge,
            gas_object_id=self.gas_ids[0],
            before=self.before,
            written=written,
            created=self.created - self.deleted,
            deleted=deleted,
            read_only_shared=[
                self.before[i] for i in sorted(self.read_only) if self.before[i].owned_by.kind == "SHARED"
            ],
            events=self.events,
            balance_changes={a: v for a, v in changes.items() if v},
            published=self.published,
            command_results=[
                list(zip(t, v, strict=True)) for t, v in zip(self.result_types, self.results, strict=True)
            ],
        )

    def _check_unused(self) -> None:
        for object_id in sorted(self.created - self.deleted):
            obj = self.live[object_id]
            if obj.owner is None:
                raise ExecutionFailure(
                    "UNUSED_VALUE_WITHOUT_DROP", f"object {object_id} of type {obj.type} was neither transferred, "
                    "shared nor consumed"
                )

    # Arguments --------------------------------------------------------------------------------
    def _arg(self, arg: rpc.Argument | None) -> Any:
        if arg is None:
            raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", "missing argument")
        if arg.kind == rpc.ArgumentArgumentKind.GAS:
            return self.live[self.gas_ids[0]]
        if arg.kind == rpc.ArgumentArgumentKind.INPUT:
            if arg.input is None or arg.input >= len(self.inputs):
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"input {arg.input} is out of bounds")
            return self.inputs[arg.input]
        if arg.kind == rpc.ArgumentArgumentKind.RESULT:
            if arg.result is None or arg.result >= len(self.results):
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"result {arg.result} is out of bounds")
            values = self.results[arg.result]
            if arg.subresult is None:
                if len(values) != 1:
                    raise ExecutionFailure("COMMAND_ARGUMENT_ERROR",
                                           f"result {arg.result} has {len(values)} values; use a nested result")
                return values[0]
            if arg.subresult >= len(values):
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR",
                                       f"result {arg.result}.{arg.subresult} is out of bounds")
            return values[arg.subresult]
        raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"argument kind {arg.kind} is not supported")

    def _u64(self, value: Any) -> int:
        if isinstance(value, PureBytes):
            return int(decode_pure(value.data, MoveType("u64")))
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", "expected a u64 amount")

    def _coin(self, value: Any) -> LiveObject:
        if not isinstance(value, LiveObject) or value.type != COIN_TYPE:
            raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", "expected a Coin<SUI>")
        if value.id in self.deleted:
            raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"coin {value.id} was already consumed")
        return value

    def _spendable(self, coin: LiveObject) -> int:
        reserve = self.gas.budget if coin.id == self.gas_ids[0] else 0
        return coin.fields["balance"] - reserve

    # Commands ---------------------------------------------------------------------------------
    def _command(self, command: rpc.Command) -> tuple[list[MoveType], list[Any]]:
        """Run one command; return its results and their Move types."""
        if command.split_coins is not None:
            return self._split(command.split_coins)
        if command.merge_coins is not None:
            return self._merge(command.merge_coins)
        if command.transfer_objects is not None:
            return self._transfer(command.transfer_objects)
        if command.move_call is not None:
            return self._move_call(command.move_call)
        if command.publish is not None:
            return self._publish(command.publish)
        raise ExecutionFailure("FEATURE_NOT_YET_SUPPORTED", "this command is not supported by the local node "
                               "(supported: SplitCoins, MergeCoins, TransferObjects, MoveCall, Publish)")

    def _split(self, cmd: rpc.SplitCoins) -> tuple[list[MoveType], list[Any]]:
        coin = self._coin(self._arg(cmd.coin))
        self._require_writable(coin)
        amounts = [self._u64(self._arg(a)) for a in cmd.amounts]
        if sum(amounts) > self._spendable(coin):
            raise ExecutionFailure("INSUFFICIENT_COIN_BALANCE",
                                   f"coin {coin.id} cannot split {sum(amounts)} (spendable {self._spendable(coin)})")
        coin.fields["balance"] -= sum(amounts)
        new = []
        for amount in amounts:
            object_id = self.fresh_id()
            obj = LiveObject(object_id, COIN_TYPE, {"id": object_id, "balance": amount}, None,
                             has_public_transfer=True)
            self.add_object(obj)
            new.append(obj)
        return [parse_type(COIN_TYPE)] * len(new), new

    def _merge(self, cmd: rpc.MergeCoins) -> tuple[list[MoveType], list[Any]]:
        target = self._coin(self._arg(cmd.coin))
        self._require_writable(target)
        for arg in cmd.coins_to_merge:
            source = self._coin(self._arg(arg))
            if source.id in self.gas_ids or source.id == target.id:
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"coin {source.id} cannot be merged away here")
            target.fields["balance"] += source.fields["balance"]
            self.delete_object(source)
        return [], []

    def _transfer(self, cmd: rpc.TransferObjects) -> tuple[list[MoveType], list[Any]]:
        recipient = self._arg(cmd.address)
        if isinstance(recipient, PureBytes):
            recipient = decode_pure(recipient.data, MoveType("address"))
        if not isinstance(recipient, str):
            raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", "transfer recipient is not an address")
        for arg in cmd.objects:
            obj = self._arg(arg)
            if not isinstance(obj, LiveObject) or obj.id in self.deleted:
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", "TransferObjects takes objects only")
            if not obj.has_public_transfer:
                raise ExecutionFailure("INVALID_TRANSFER_OBJECT",
                                       f"{obj.type} has no `store` ability; only its module can transfer it")
            if obj.id in self.read_only or obj.id in self.shared_mutable:
                raise ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"object {obj.id} is not owned; cannot transfer it")
            obj.owner = Owner("ADDRESS", address=recipient)
        return [], []

    def _bind(self, param: MoveType, value: Any, position: int) -> Any:
        """Give a PTB value to a Move parameter, with the checks the VM makes."""
        bare = _strip_ref(param)
        where = f"argument {position}"

        def refuse(kind: str, detail: str) -> ExecutionFailure:
            return ExecutionFailure("COMMAND_ARGUMENT_ERROR", f"{where}: {detail}", argument=position,
                                    argument_kind=kind)

        if param.name in self._type_params:
            return value
        if _is_pure(bare):
            if isinstance(value, PureBytes):
                try:
                    return decode_pure(value.data, bare)
                except MoveTypeError as exc:
                    raise refuse("INVALID_BCS_BYTES", f"invalid BCS for {bare.render()}: {exc}") from None
            if isinstance(value, (LiveObject, StructValue)):
                raise refuse("TYPE_MISMATCH", f"expected {bare.render()}, got an object")
            return value
        expected = bare.render()
        if isinstance(value, LiveObject):
            if value.type != expected:
                raise refuse("TYPE_MISMATCH", f"type mismatch, expected {expected}, got {value.type}")
            if value.id in self.deleted:
                raise refuse("INVALID_VALUE_USAGE", f"object {value.id} was already consumed")
            if param.ref == "&mut" and value.id in self.read_only:
                raise refuse("INVALID_OBJECT_BY_MUT_REF", f"object {value.id} is not mutable here")
            if not param.ref and value.id in self.shared_mutable | self.read_only:
                raise refuse("INVALID_OBJECT_BY_VALUE", f"shared object {value.id} cannot be passed by value")
            return value
        if isinstance(value, StructValue) and value.type == expected:
            return value
        if isinstance(value, PureBytes):
            raise refuse("INVALID_USAGE_OF_PURE_ARGUMENT", f"a pure argument cannot be a {expected}")
        raise refuse("TYPE_MISMATCH", f"expected {expected}")

    def _move_call(self, call: rpc.MoveCall) -> tuple[list[MoveType], list[Any]]:
        pkg = self.packages[normalize_address(call.package or "")]  # present: checked before execution
        module = pkg.module(call.module or "")
        function: MoveFunction | None = module.function(call.function or "") if module else None
        if module is None or function is None:
            raise ExecutionFailure("FUNCTION_NOT_FOUND", f"{pkg.package_id}::{call.module}::{call.function} not found")
        if len(call.type_arguments) != len(function.type_params):
            raise ExecutionFailure("TYPE_ARITY_MISMATCH", f"{function.name} takes {len(function.type_params)} "
                                   f"type arguments, got {len(call.type_arguments)}")
        self._type_params = set(function.type_params)
        params = [parse_type(p.split(": ", 1)[1]) for p in function.params]
        declared = [p for p in params if p.base != "TxContext"]
        if len(call.arguments) != len(declared):
            raise ExecutionFailure("ARITY_MISMATCH", f"{function.name} takes {len(declared)} arguments, "
                                   f"got {len(call.arguments)}")
        supplied = iter(call.arguments)
        bound: list[Any] = []
        for position, param in enumerate(params):
            if param.base == "TxContext":
                bound.append(None)
                continue
            qualified = param if param.name in self._type_params else pkg.scope.qualify(param)
            bound.append(self._bind(qualified, self._arg(next(supplied)), position))
        clock = next((b for b in bound if isinstance(b, LiveObject) and b.id == CLOCK_ID), None)
        ctx = CallContext(self, pkg.package_id, module, function.name,
                          clock.fields["timestamp_ms"] if clock else self.now_ms, scope=pkg.scope)
        results = function.handler(ctx, bound)
        if len(results) != len(function.returns):
            raise AssertionError(f"handler {function.name} returned {len(results)} values, "
                                 f"declared {len(function.returns)}")
        return [pkg.scope.qualify(parse_type(r)) for r in function.returns], list(results)

    def _publish(self, cmd: rpc.Publish) -> tuple[list[MoveType], list[Any]]:
        try:
            markers = parse_markers(list(cmd.modules))
        except PublishError as exc:
            raise ExecutionFailure("VM_VERIFICATION_OR_DESERIALIZATION_ERROR", str(exc)) from None
        package_id = self.fresh_id()
        try:
            pkg = self.package_loader(package_id, markers[0].package)
        except KeyError as exc:
            raise ExecutionFailure("VM_VERIFICATION_OR_DESERIALIZATION_ERROR", str(exc.args[0])) from None
        names = sorted(m.module for m in markers)
        if names != sorted(m.name for m in pkg.modules):
            raise ExecutionFailure("VM_VERIFICATION_OR_DESERIALIZATION_ERROR",
                                   f"package {pkg.name} has modules {sorted(m.name for m in pkg.modules)}, "
                                   f"Publish carries {names}")
        package_obj = LiveObject(
            package_id, "package", {}, Owner("IMMUTABLE"),
            package={"name": pkg.name, "version": 1,
                     "modules": [{"name": m.module, "source_sha256": m.source_sha256} for m in markers]},
        )
        self.add_object(package_obj)
        self.packages[package_id] = pkg
        self.published.append(pkg)
        for module in pkg.modules:
            if module.init is not None:
                module.init(CallContext(self, package_id, module, "init", self.now_ms, scope=pkg.scope))
        cap_id = self.fresh_id()
        cap = LiveObject(
            cap_id, f"{FRAMEWORK}::package::UpgradeCap",
            {"id": cap_id, "package": package_id, "version": 1, "policy": 0}, None, has_public_transfer=True,
        )
        self.add_object(cap)
        return [parse_type(cap.type)], [cap]
