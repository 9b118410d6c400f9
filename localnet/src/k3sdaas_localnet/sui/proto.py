"""Builders of the ``sui.rpc.v2`` messages the node answers with (pysui's own betterproto2 classes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import base58
from pysui.sui.sui_grpc.suimsgs.google import protobuf as gp
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas.chain.dynamic_fields import address_bytes, type_tag_bcs

from .executor import EmittedEvent, Outcome
from .handlers.base import ExecutionFailure, MoveAbort, MoveFunction
from .movetypes import COIN_TYPE, SUI_TYPE, MoveType, parse_type
from .objects import Layouts, LiveObject, Owner, StructValue, render_json, to_bcs, uleb128
from .packages import LoadedPackage
from .publish import marker
from .state import EPOCH

Kind = rpc.ExecutionErrorExecutionErrorKind
DEFAULT_OBJECT_MASK = ("object_id", "version", "digest")
OBJECT_FIELDS = frozenset(f.name for f in dataclasses.fields(rpc.Object))


def timestamp(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def owner(o: Owner) -> rpc.Owner:
    kind = rpc.OwnerOwnerKind[o.kind]
    if o.kind in ("ADDRESS", "OBJECT"):
        return rpc.Owner(kind=kind, address=o.address)
    if o.kind == "SHARED":
        return rpc.Owner(kind=kind, version=o.initial_shared_version)
    return rpc.Owner(kind=kind)


def move_object(obj: LiveObject, layouts: Layouts) -> rpc.Object:
    """An object as GetObject / ListOwnedObjects / effects report it."""
    message = rpc.Object(
        object_id=obj.id,
        version=obj.version,
        digest=obj.digest,
        owner=owner(obj.owner) if obj.owner else None,
        object_type=obj.type,
        previous_transaction=obj.previous_transaction or None,
        storage_rebate=obj.storage_rebate,
    )
    if obj.package is not None:
        message.package = rpc.Package(
            storage_id=obj.id, original_id=obj.id, version=obj.package["version"],
            modules=[rpc.Module(name=name, contents=contents) for name, contents in _published_modules(obj).items()],
        )
        return message
    t = parse_type(obj.type)
    contents = to_bcs(obj.fields, t, layouts)
    message.has_public_transfer = obj.has_public_transfer
    message.json = gp.Value.from_dict(render_json(obj.fields, t, layouts))
    message.contents = rpc.Bcs(name=obj.type, value=contents)
    message.bcs = rpc.Bcs(name="Object", value=object_bcs(obj, contents))
    if obj.is_coin:
        message.balance = obj.fields["balance"]
    return message


def _owner_bcs(o: Owner) -> bytes:
    """``sui_types::object::Owner``: AddressOwner 0, ObjectOwner 1, Shared 2, Immutable 3."""
    if o.kind in ("ADDRESS", "OBJECT"):
        return bytes([0 if o.kind == "ADDRESS" else 1]) + address_bytes(o.address or "")
    if o.kind == "SHARED":
        return b"\x02" + (o.initial_shared_version or 0).to_bytes(8, "little")
    return b"\x03"


def object_bcs(obj: LiveObject, contents: bytes) -> bytes:
    """``sui_types::object::Object`` of a Move object: ``Data::Move(MoveObject{type_, has_public_transfer,
    version, contents})``, owner, previous transaction digest (length-prefixed), storage rebate."""
    if obj.type == COIN_TYPE:
        move_type = b"\x01"  # MoveObjectType::GasCoin
    elif obj.is_coin:
        move_type = b"\x03" + type_tag_bcs(obj.type[obj.type.index("<") + 1 : -1])  # Coin(TypeTag)
    else:
        move_type = b"\x00" + type_tag_bcs(obj.type)[1:]  # Other(StructTag): the TypeTag without its variant
    previous = base58.b58decode(obj.previous_transaction) if obj.previous_transaction else bytes(32)
    return (b"\x00" + move_type + bytes([obj.has_public_transfer]) + obj.version.to_bytes(8, "little")
            + uleb128(len(contents)) + contents + _owner_bcs(obj.owned_by) + uleb128(len(previous)) + previous
            + obj.storage_rebate.to_bytes(8, "little"))


def masked(message: rpc.Object, read_mask: gp.FieldMask | None) -> rpc.Object:
    """Only the top-level fields ``read_mask`` names (a full node's default: ``object_id,version,digest``)."""
    paths = {p.split(".", 1)[0] for p in (read_mask.paths if read_mask and read_mask.paths else DEFAULT_OBJECT_MASK)}
    if "*" in paths:
        return message
    return rpc.Object(**{name: getattr(message, name) for name in paths if name in OBJECT_FIELDS})


def dynamic_field(obj: LiveObject, layouts: Layouts) -> rpc.DynamicField:
    """A ``ListDynamicFields`` entry for a ``Field<K, V>`` object (its name and value as BCS)."""
    key_type, value_type = parse_type(obj.type).args
    return rpc.DynamicField(
        kind=rpc.DynamicFieldDynamicFieldKind.FIELD, parent=obj.owned_by.address, field_id=obj.id,
        field_object=move_object(obj, layouts),
        name=rpc.Bcs(name=key_type.render(), value=to_bcs(obj.fields["name"], key_type, layouts)),
        value=rpc.Bcs(name=value_type.render(), value=to_bcs(obj.fields["value"], value_type, layouts)),
        value_type=value_type.render(),
    )


def event(e: EmittedEvent, sender: str, layouts: Layouts, *, tx_digest: str, checkpoint: int | None,
          index: int) -> rpc.Event:
    t = parse_type(e.event_type)
    return rpc.Event(
        package_id=e.package_id,
        module=e.module,
        sender=sender,
        event_type=e.event_type,
        contents=rpc.Bcs(name=e.event_type, value=to_bcs(e.fields, t, layouts)),
        json=gp.Value.from_dict(render_json(e.fields, t, layouts)),
        checkpoint=checkpoint,
        transaction_digest=tx_digest,
        event_index=index,
    )


def execution_error(error: ExecutionFailure | MoveAbort, command: int | None) -> rpc.ExecutionError:
    suffix = f" in command {command}" if command is not None else ""
    if isinstance(error, MoveAbort):
        description = (
            f"MoveAbort(MoveLocation {{ module: ModuleId {{ address: {error.package[2:]}, name: "
            f"Identifier(\"{error.module}\") }}, function_name: Some(\"{error.function}\") }}, {error.code}){suffix}"
        )
        return rpc.ExecutionError(
            description=description, command=command, kind=Kind.MOVE_ABORT,
            abort=rpc.MoveAbort(
                abort_code=error.code,
                location=rpc.MoveLocation(package=error.package, module=error.module, function_name=error.function),
            ),
        )
    kind = getattr(Kind, error.kind, Kind.COMMAND_ARGUMENT_ERROR)
    argument_error = None if error.argument_kind is None else rpc.CommandArgumentError(
        argument=error.argument, kind=rpc.CommandArgumentErrorCommandArgumentErrorKind[error.argument_kind])
    return rpc.ExecutionError(description=f"{error.kind}: {error.description}{suffix}", command=command, kind=kind,
                              command_argument_error=argument_error)


def _changed(outcome: Outcome, object_id: str, after: LiveObject | None) -> rpc.ChangedObject:
    before = outcome.before.get(object_id)
    change = rpc.ChangedObject(object_id=object_id)
    if before is None:
        change.input_state = rpc.ChangedObjectInputObjectState.DOES_NOT_EXIST
    else:
        change.input_state = rpc.ChangedObjectInputObjectState.EXISTS
        change.input_version, change.input_digest = before.version, before.digest
        change.input_owner = owner(before.owner) if before.owner else None
    if after is None:
        change.output_state = rpc.ChangedObjectOutputObjectState.DOES_NOT_EXIST
        change.id_operation = rpc.ChangedObjectIdOperation.DELETED
        change.object_type = before.type if before else None
    else:
        change.output_state = (rpc.ChangedObjectOutputObjectState.PACKAGE_WRITE if after.package is not None
                               else rpc.ChangedObjectOutputObjectState.OBJECT_WRITE)
        change.output_version, change.output_digest = after.version, after.digest
        change.output_owner = owner(after.owner) if after.owner else None
        change.id_operation = (rpc.ChangedObjectIdOperation.CREATED if object_id in outcome.created
                               else rpc.ChangedObjectIdOperation.NONE)
        change.object_type = after.type
    return change


def effects(outcome: Outcome, effects_digest: str) -> rpc.TransactionEffects:
    changed = [_changed(outcome, o.id, o) for o in outcome.written]
    changed += [_changed(outcome, object_id, None) for object_id in outcome.deleted]
    changed.sort(key=lambda c: c.object_id or "")
    charge = outcome.charge
    return rpc.TransactionEffects(
        digest=effects_digest,
        version=2,
        status=rpc.ExecutionStatus(
            success=outcome.success,
            error=None if outcome.error is None else execution_error(outcome.error, outcome.failed_command),
        ),
        epoch=EPOCH,
        gas_used=rpc.GasCostSummary(
            computation_cost=charge.computation_cost, storage_cost=charge.storage_cost,
            storage_rebate=charge.storage_rebate, non_refundable_storage_fee=charge.non_refundable_storage_fee,
        ),
        transaction_digest=outcome.digest,
        gas_object=next((c for c in changed if c.object_id == outcome.gas_object_id), None),
        dependencies=sorted({o.previous_transaction for o in outcome.before.values() if o.previous_transaction}),
        lamport_version=outcome.lamport_version,
        changed_objects=changed,
        unchanged_consensus_objects=[
            rpc.UnchangedConsensusObject(
                kind=rpc.UnchangedConsensusObjectUnchangedConsensusObjectKind.READ_ONLY_ROOT,
                object_id=o.id, version=o.version, digest=o.digest, object_type=o.type,
            )
            for o in outcome.read_only_shared
        ],
    )


def transaction(outcome: Outcome) -> rpc.Transaction:
    req = outcome.request
    gas = req.gas
    return rpc.Transaction(
        bcs=rpc.Bcs(name="TransactionData", value=req.bcs) if req.bcs is not None else None,
        digest=outcome.digest,
        version=1,
        kind=rpc.TransactionKind(kind=rpc.TransactionKindKind.PROGRAMMABLE_TRANSACTION,
                                 programmable_transaction=req.ptb),
        sender=req.sender,
        gas_payment=None if gas is None else rpc.GasPayment(
            objects=[rpc.ObjectReference(object_id=i, version=v, digest=d) for i, v, d in gas.payment],
            owner=gas.owner, price=gas.price, budget=gas.budget,
        ),
    )


def executed_transaction(outcome: Outcome, layouts: Layouts, *, effects_digest: str, checkpoint: int | None,
                         timestamp_ms: int | None, signatures: list[bytes]) -> rpc.ExecutedTransaction:
    return rpc.ExecutedTransaction(
        digest=outcome.digest,
        transaction=transaction(outcome),
        signatures=[rpc.UserSignature(bcs=rpc.Bcs(name="UserSignature", value=s), scheme=rpc.SignatureScheme.ED25519)
                    for s in signatures],
        effects=effects(outcome, effects_digest),
        events=rpc.TransactionEvents(events=[
            event(e, outcome.request.sender, layouts, tx_digest=outcome.digest, checkpoint=checkpoint, index=i)
            for i, e in enumerate(outcome.events)
        ]),
        checkpoint=checkpoint,
        timestamp=None if timestamp_ms is None else timestamp(timestamp_ms),
        balance_changes=[
            rpc.BalanceChange(address=a, coin_type=SUI_TYPE, amount=str(v))
            for a, v in sorted(outcome.balance_changes.items())
        ],
        objects=rpc.ObjectSet(objects=[move_object(o, layouts) for o in outcome.written]),
    )


def command_outputs(outcome: Outcome, layouts: Layouts) -> list[rpc.CommandResult]:
    """Return values of each command (a simulation's answer to "what would this call return")."""

    def output(t: MoveType, value: Any) -> rpc.CommandOutput:
        plain = value.fields if isinstance(value, (LiveObject, StructValue)) else value
        return rpc.CommandOutput(value=rpc.Bcs(name=t.render(), value=to_bcs(plain, t, layouts)),
                                 json=gp.Value.from_dict(render_json(plain, t, layouts)))

    return [rpc.CommandResult(return_values=[output(t, v) for t, v in results]) for results in outcome.command_results]


def checkpoint(sequence_number: int, digest: str, timestamp_ms: int, previous_digest: str | None,
               executed: rpc.ExecutedTransaction | None) -> rpc.Checkpoint:
    return rpc.Checkpoint(
        sequence_number=sequence_number,
        digest=digest,
        summary=rpc.CheckpointSummary(
            digest=digest, epoch=EPOCH, sequence_number=sequence_number, total_network_transactions=sequence_number,
            previous_digest=previous_digest, timestamp=timestamp(timestamp_ms),
        ),
        transactions=[executed] if executed is not None else [],
    )


_SCALARS = {name: rpc.OpenSignatureBodyType[name.upper()]
            for name in ("address", "bool", "u8", "u16", "u32", "u64", "u128", "u256")}


def signature_body(t: MoveType, type_params: tuple[str, ...]) -> rpc.OpenSignatureBody:
    if t.name in type_params:
        return rpc.OpenSignatureBody(type=rpc.OpenSignatureBodyType.TYPE_PARAMETER,
                                     type_parameter=type_params.index(t.name))
    if t.name in _SCALARS:
        return rpc.OpenSignatureBody(type=_SCALARS[t.name])
    if t.name == "vector":
        return rpc.OpenSignatureBody(type=rpc.OpenSignatureBodyType.VECTOR,
                                     type_parameter_instantiation=[signature_body(t.args[0], type_params)])
    return rpc.OpenSignatureBody(type=rpc.OpenSignatureBodyType.DATATYPE, type_name=t.name,
                                 type_parameter_instantiation=[signature_body(a, type_params) for a in t.args])


def open_signature(t: MoveType, type_params: tuple[str, ...]) -> rpc.OpenSignature:
    ref = {"&": rpc.OpenSignatureReference.IMMUTABLE, "&mut": rpc.OpenSignatureReference.MUTABLE}.get(t.ref)
    return rpc.OpenSignature(reference=ref, body=signature_body(t, type_params))


def function_descriptor(pkg: LoadedPackage, fn: MoveFunction) -> rpc.FunctionDescriptor:
    """What GetFunction reports; pysui serialises pure arguments from these parameter types."""

    def qualify(text: str) -> MoveType:
        t = parse_type(text)
        return t if t.name in fn.type_params else pkg.scope.qualify(t)

    return rpc.FunctionDescriptor(
        name=fn.name,
        visibility=(rpc.FunctionDescriptorVisibility.PUBLIC if fn.visibility.startswith("public")
                    else rpc.FunctionDescriptorVisibility.PRIVATE),
        is_entry="entry" in fn.visibility,
        type_parameters=[rpc.TypeParameter(constraints=[rpc.Ability.DROP]) for _ in fn.type_params],
        parameters=[open_signature(qualify(p.split(": ", 1)[1]), fn.type_params) for p in fn.params],
        returns=[open_signature(qualify(r), fn.type_params) for r in fn.returns],
    )


def _published_modules(package_object: LiveObject) -> dict[str, bytes]:
    """Module name -> the marker bytes it was published with (see :mod:`.publish`)."""
    info = package_object.package or {}
    return {m["name"]: marker(info["name"], m["name"], m["source_sha256"]) for m in info.get("modules", [])}


def package(pkg: LoadedPackage, package_object: LiveObject | None) -> rpc.Package:
    """GetPackage: functions from the handler table, module contents as published."""
    contents = _published_modules(package_object) if package_object else {}
    return rpc.Package(
        storage_id=pkg.package_id, original_id=pkg.package_id, version=1,
        modules=[rpc.Module(name=m.name, contents=contents.get(m.name),
                            functions=[function_descriptor(pkg, f) for f in m.functions])
                 for m in pkg.modules],
    )
