"""The declarative table a Python "Move module" exposes, and the context its handlers run in.

Each module lists its functions (name, Move parameter types, return types, handler), abort codes,
events and struct layouts exactly as the Move sources declare them; the parity test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from k3sdaas.chain.dynamic_fields import derive_dynamic_field_id

from ..movetypes import FIELD_TYPE, FRAMEWORK, MoveType, TypeScope, parse_type
from ..objects import LiveObject, Owner, Table, to_bcs


class MoveAbort(Exception):
    """A Move ``abort`` with the module, function and code a real node reports."""

    def __init__(self, package: str, module: str, function: str, code: int, name: str = "") -> None:
        super().__init__(f"MoveAbort in {package}::{module}::{function} with code {code} ({name or 'abort'})")
        self.package, self.module, self.function, self.code, self.name = package, module, function, code, name


class ExecutionFailure(Exception):
    """A non-abort execution error (wrong argument, insufficient balance, unused value…)."""

    def __init__(self, kind: str, description: str, *, command: int | None = None, argument: int | None = None,
                 argument_kind: str | None = None) -> None:
        super().__init__(description)
        self.kind, self.description, self.command = kind, description, command
        # COMMAND_ARGUMENT_ERROR: which argument of the command, and CommandArgumentError's kind
        self.argument, self.argument_kind = argument, argument_kind


class Runtime(Protocol):
    """What handlers may ask of the executing transaction (implemented by the executor)."""

    sender: str
    tx_digest: str

    def fresh_id(self) -> str: ...
    def add_object(self, obj: LiveObject) -> None: ...
    def delete_object(self, obj: LiveObject) -> None: ...
    def emit_event(self, package: str, module: str, event_type: str, fields: dict[str, Any]) -> None: ...
    def mark_mutated(self, obj: LiveObject) -> None: ...
    def child(self, object_id: str) -> LiveObject | None: ...


Handler = Callable[["CallContext", list[Any]], list[Any]]


@dataclass(frozen=True)
class MoveFunction:
    """One function: ``params`` as written in the Move signature, TxContext included.

    ``visibility`` is the declaration's prefix: "public", "entry" (private entry) or "public entry".
    """

    name: str
    params: tuple[str, ...]
    handler: Handler
    returns: tuple[str, ...] = ()
    visibility: str = "public"
    type_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class MoveModule:
    """A module's ABI and behaviour; ``structs`` are layouts of objects and stored structs (field order matters)."""

    name: str
    functions: tuple[MoveFunction, ...]
    aborts: Mapping[str, int] = field(default_factory=dict)
    events: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    structs: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    abilities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    init: Callable[[CallContext], None] | None = None

    def function(self, name: str) -> MoveFunction | None:
        return next((f for f in self.functions if f.name == name), None)


@dataclass
class CallContext:
    """Handed to a handler: who calls, when, and the effects it may have."""

    runtime: Runtime
    package_id: str
    module: MoveModule
    function: str
    now_ms: int
    sending_module: str = ""  # module of the PTB's MoveCall; events report it even when emitted deeper
    scope: TypeScope | None = None  # the package's type names, to qualify table key and value types

    def within(self, module: MoveModule, function: str) -> CallContext:
        """Context for a call into another module of the package (aborts then report that module)."""
        return CallContext(self.runtime, self.package_id, module, function, self.now_ms,
                           self.sending_module or self.module.name, self.scope)

    def at(self, function: str) -> CallContext:
        """Context inside a private helper of the same module: its aborts report that function."""
        return self.within(self.module, function)

    @property
    def sender(self) -> str:
        return self.runtime.sender

    def abort(self, name: str) -> NoReturn:
        """Abort with the module's named code, as ``abort EName`` does."""
        raise MoveAbort(self.package_id, self.module.name, self.function, self.module.aborts[name], name)

    def type_of(self, struct: str, module: str | None = None) -> str:
        return f"{self.package_id}::{module or self.module.name}::{struct}"

    def new_object(self, struct: str, fields: dict[str, Any], *, module: str | None = None) -> LiveObject:
        """Create an object of this package; its ``id`` field is the fresh UID. Owner is set by transfer/share."""
        object_id = self.runtime.fresh_id()
        abilities = self.module.abilities.get(struct, ())
        obj = LiveObject(
            id=object_id,
            type=self.type_of(struct, module),
            fields={"id": object_id, **fields},
            owner=None,
            has_public_transfer="store" in abilities,
        )
        self.runtime.add_object(obj)
        return obj

    def new_table(self) -> Table:
        return Table(self.runtime.fresh_id())

    def table(self, obj: LiveObject, field_name: str) -> TableView:
        """``obj.field_name`` (a ``Table<K, V>`` as the struct declares it) with ``sui::table``'s operations."""
        struct = obj.type.rsplit("::", 1)[-1]
        declared = dict(self.module.structs[struct])[field_name]
        assert self.scope is not None, "table access outside a package call"
        key_type, value_type = self.scope.qualify(parse_type(declared)).args
        return TableView(self, obj.fields[field_name], key_type, value_type)

    def transfer(self, obj: LiveObject, recipient: str) -> None:
        obj.owner = Owner("ADDRESS", address=recipient)
        self.runtime.mark_mutated(obj)

    def share(self, obj: LiveObject) -> None:
        obj.owner = Owner("SHARED")

    def delete(self, obj: LiveObject) -> None:
        self.runtime.delete_object(obj)

    def mutated(self, obj: LiveObject) -> None:
        self.runtime.mark_mutated(obj)

    def emit(self, event: str, **fields: Any) -> None:
        """Emit ``event`` of this module; the fields must be exactly the declared ones."""
        declared = [name for name, _ in self.module.events[event]]
        if list(fields) != declared:
            raise AssertionError(f"event {event} fields {list(fields)} != declared {declared}")
        self.runtime.emit_event(self.package_id, self.sending_module or self.module.name, self.type_of(event), fields)

    def new_coin(self, amount: int, recipient: str) -> LiveObject:
        """``coin::from_balance`` + ``transfer::public_transfer`` in one step."""
        from ..movetypes import COIN_TYPE

        object_id = self.runtime.fresh_id()
        coin = LiveObject(object_id, COIN_TYPE, {"id": object_id, "balance": amount}, None, has_public_transfer=True)
        self.runtime.add_object(coin)
        self.transfer(coin, recipient)
        return coin


class TableView:
    """``sui::table`` over one Table: each entry is a ``Field<K, V>`` object owned by the table, at the id
    Sui derives from the key, loaded by the runtime when touched (as Sui's object runtime does)."""

    def __init__(self, ctx: CallContext, table: Table, key_type: MoveType, value_type: MoveType) -> None:
        self.ctx, self.table, self.key_type, self.value_type = ctx, table, key_type, value_type

    def _field(self, key: Any) -> LiveObject | None:
        return self.ctx.runtime.child(self._field_id(key))

    def _field_id(self, key: Any) -> str:
        return derive_dynamic_field_id(self.table.id, self.key_type.render(), to_bcs(key, self.key_type, {}))

    def __contains__(self, key: Any) -> bool:
        return self._field(key) is not None

    def get(self, key: Any) -> Any:
        """The value, or None when absent (``table::contains`` then ``table::borrow``)."""
        field = self._field(key)
        return None if field is None else field.fields["value"]

    def borrow_mut(self, key: Any) -> Any:
        field = self._field(key)
        if field is None:
            raise MoveAbort(FRAMEWORK, "dynamic_field", "borrow_child_object_mut", 1, "EFieldDoesNotExist")
        self.ctx.runtime.mark_mutated(field)
        return field.fields["value"]

    def add(self, key: Any, value: Any) -> None:
        if key in self:
            raise MoveAbort(FRAMEWORK, "dynamic_field", "add", 0, "EFieldAlreadyExists")
        field_id = self._field_id(key)
        field_type = f"{FIELD_TYPE}<{self.key_type.render()}, {self.value_type.render()}>"
        self.ctx.runtime.add_object(LiveObject(field_id, field_type, {"id": field_id, "name": key, "value": value},
                                               Owner("OBJECT", address=self.table.id)))
        self.table.size += 1

    def remove(self, key: Any) -> Any:
        field = self._field(key)
        if field is None:
            raise MoveAbort(FRAMEWORK, "dynamic_field", "remove_child_object", 1, "EFieldDoesNotExist")
        self.ctx.runtime.delete_object(field)
        self.table.size -= 1
        return field.fields["value"]


def reader(fn: Callable[..., Any]) -> Handler:
    """Wrap a read function ``fn(ctx, *args) -> value`` as a handler returning that one value."""
    return lambda ctx, args: [fn(ctx, *args)]
