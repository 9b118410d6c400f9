"""The gRPC surface: every ``sui.rpc.v2`` route pysui has a stub for, served with grpclib.

Routes are discovered from pysui's stub classes, so all 27 exist; those without an implementation
here answer ``UNIMPLEMENTED`` naming the method. Every call is logged (``rpc_log``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpclib.const
import grpclib.server
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from pysui.sui.sui_grpc.suimsgs.google import rpc as google_rpc
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from . import proto
from .gas import MAX_TX_GAS
from .ledger import Ledger
from .movetypes import COIN_TYPE, SUI_TYPE, MoveTypeError, normalize_address, normalize_type
from .ptb import MAX_PURE_ARGUMENT_SIZE, MAX_TX_SIZE_BYTES, InvalidTransaction, request_from_proto
from .queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvalidRequest,
    event_cursor,
    event_matches,
    limit_of,
    page_events,
)
from .state import EPOCH, CheckpointRow

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 100
POLL_INTERVAL_S = 0.05
RPC_LOG_SIZE = 10_000

# Transaction limits reported in the protocol config (pysui reads these 11 names).
TRANSACTION_CONSTRAINTS = {
    "max_arguments": 512, "max_input_objects": 2048, "max_num_transferred_move_object_ids": 2048,
    "max_programmable_tx_commands": 1024, "max_pure_argument_size": MAX_PURE_ARGUMENT_SIZE,
    "max_tx_size_bytes": MAX_TX_SIZE_BYTES,
    "max_type_argument_depth": 16, "max_type_arguments": 16, "max_tx_gas": MAX_TX_GAS,
    "max_publish_or_upgrade_per_ptb": 5,
}


@dataclass(frozen=True)
class Route:
    path: str
    method: str  # snake_case, as in pysui's stubs
    streaming: bool
    request: type
    response: type


def discover_routes() -> list[Route]:
    """All routes of pysui's ``*ServiceStub`` classes, read from their method bodies."""
    routes = []
    for name, stub in inspect.getmembers(rpc, inspect.isclass):
        if not name.endswith("ServiceStub"):
            continue
        for method, fn in inspect.getmembers(stub, inspect.isfunction):
            match = re.search(r'_(unary_unary|unary_stream)\(\s*"(/sui\.rpc\.v2\.\w+/\w+)",\s*message,\s*(\w+)',
                              inspect.getsource(fn))
            if match is None:
                continue
            response = getattr(rpc, match.group(3))
            request = getattr(rpc, match.group(3).removesuffix("Response") + "Request")
            routes.append(Route(match.group(2), method, match.group(1) == "unary_stream", request, response))
    return routes


def _not_found(what: str) -> GRPCError:
    return GRPCError(Status.NOT_FOUND, f"{what} not found")


def _invalid(message: str) -> GRPCError:
    return GRPCError(Status.INVALID_ARGUMENT, message)


def _address(value: str | None, field: str) -> str:
    try:
        return normalize_address(value or "")
    except MoveTypeError as exc:
        raise _invalid(f"{field}: {exc}") from None


class SuiNodeService:
    """One grpclib handler object for all services (grpclib maps by full path)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.routes = discover_routes()
        self.rpc_log: deque[tuple[str, str]] = deque(maxlen=RPC_LOG_SIZE)

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        return {
            r.path: grpclib.const.Handler(
                self._handler(r),
                grpclib.const.Cardinality.UNARY_STREAM if r.streaming else grpclib.const.Cardinality.UNARY_UNARY,
                r.request, r.response,
            )
            for r in self.routes
        }

    def _handler(self, route: Route) -> Callable[[grpclib.server.Stream], Any]:
        impl = getattr(self, route.method, None)

        async def handle(stream: grpclib.server.Stream) -> None:
            request = await stream.recv_message()
            status = "OK"
            try:
                if impl is None:
                    raise GRPCError(Status.UNIMPLEMENTED, f"{route.path} is not implemented by the k3sdaas local node")
                if route.streaming:
                    async for item in impl(request):
                        await stream.send_message(item)
                else:
                    await stream.send_message(await impl(request))
            except GRPCError as exc:
                status = exc.status.name
                raise
            except (InvalidTransaction, InvalidRequest) as exc:
                status = "INVALID_ARGUMENT"
                raise _invalid(str(exc)) from None
            except Exception:
                status = "UNKNOWN"  # a stand-in bug: grpclib answers UNKNOWN, the traceback goes to the log
                log.exception("%s failed", route.path)
                raise
            finally:
                self.rpc_log.append((route.path, status))
                log.debug("%s -> %s", route.path, status)

        return handle

    # LedgerService ----------------------------------------------------------------------------
    async def get_service_info(self, request: rpc.GetServiceInfoRequest) -> rpc.GetServiceInfoResponse:
        latest = self.ledger.state.latest_checkpoint()
        assert latest is not None
        return rpc.GetServiceInfoResponse(
            chain_id=self.ledger.chain_id, chain="localnet", epoch=EPOCH,
            checkpoint_height=latest.sequence_number, timestamp=proto.timestamp(latest.timestamp_ms),
            lowest_available_checkpoint=0, lowest_available_checkpoint_objects=0, server="k3sdaas-localnet",
        )

    async def get_epoch(self, request: rpc.GetEpochRequest) -> rpc.GetEpochResponse:
        if request.epoch is not None and request.epoch != EPOCH:
            raise _not_found(f"epoch {request.epoch}")
        latest = self.ledger.state.latest_checkpoint()
        assert latest is not None
        return rpc.GetEpochResponse(epoch=rpc.Epoch(
            epoch=EPOCH, first_checkpoint=0, last_checkpoint=None,
            start=proto.timestamp(int(self.ledger.state.get_meta("genesis_ms") or 0)),
            reference_gas_price=self.ledger.config.reference_gas_price,
            protocol_config=rpc.ProtocolConfig(
                protocol_version=PROTOCOL_VERSION,
                attributes={k: str(v) for k, v in TRANSACTION_CONSTRAINTS.items()},
                feature_flags={"enable_nitro_attestation": True},
            ),
        ))

    def _object(self, object_id: str | None, version: int | None = None) -> rpc.Object:
        obj = self.ledger.get_object(_address(object_id, "object_id"))
        if obj is None or (version is not None and version != obj.version):
            raise _not_found(f"object {object_id}" + (f" at version {version}" if version is not None else ""))
        return proto.move_object(obj, self.ledger.layouts())

    async def get_object(self, request: rpc.GetObjectRequest) -> rpc.GetObjectResponse:
        return rpc.GetObjectResponse(object=proto.masked(self._object(request.object_id, request.version),
                                                         request.read_mask))

    async def batch_get_objects(self, request: rpc.BatchGetObjectsRequest) -> rpc.BatchGetObjectsResponse:
        results = []
        for req in request.requests:
            try:
                obj = proto.masked(self._object(req.object_id, req.version), request.read_mask)
                results.append(rpc.GetObjectResult(object=obj))
            except GRPCError as exc:
                results.append(rpc.GetObjectResult(error=_status(exc)))
        return rpc.BatchGetObjectsResponse(objects=results)

    async def get_transaction(self, request: rpc.GetTransactionRequest) -> rpc.GetTransactionResponse:
        executed = self.ledger.transaction(request.digest or "")
        if executed is None:
            raise _not_found(f"transaction {request.digest}")
        return rpc.GetTransactionResponse(transaction=executed)

    async def batch_get_transactions(self, request: rpc.BatchGetTransactionsRequest
                                     ) -> rpc.BatchGetTransactionsResponse:
        results = []
        for digest in request.digests:
            executed = self.ledger.transaction(digest)
            results.append(rpc.GetTransactionResult(transaction=executed) if executed is not None else
                           rpc.GetTransactionResult(error=_status(_not_found(f"transaction {digest}"))))
        return rpc.BatchGetTransactionsResponse(transactions=results)

    def _checkpoint(self, row: CheckpointRow) -> rpc.Checkpoint:
        previous = self.ledger.state.checkpoint(sequence_number=row.sequence_number - 1)
        executed = self.ledger.transaction(row.transaction_digest) if row.transaction_digest else None
        return proto.checkpoint(row.sequence_number, row.digest, row.timestamp_ms,
                                previous.digest if previous else None, executed)

    async def get_checkpoint(self, request: rpc.GetCheckpointRequest) -> rpc.GetCheckpointResponse:
        if request.digest is not None:
            row = self.ledger.state.checkpoint(digest=request.digest)
        elif request.sequence_number is not None:
            row = self.ledger.state.checkpoint(sequence_number=request.sequence_number)
        else:
            row = self.ledger.state.latest_checkpoint()
        if row is None:
            raise _not_found(f"checkpoint {request.digest or request.sequence_number}")
        return rpc.GetCheckpointResponse(checkpoint=self._checkpoint(row))

    async def list_checkpoints(self, request: rpc.ListCheckpointsRequest) -> AsyncIterator[rpc.ListCheckpointsResponse]:
        start = request.start_checkpoint or 0
        limit = limit_of(request.options)
        rows = [r for r in self.ledger.state.checkpoints_after(start - 1, limit + 1)
                if request.end_checkpoint is None or r.sequence_number < request.end_checkpoint]
        for i, row in enumerate(rows[:limit]):
            mark = rpc.Watermark(cursor=row.sequence_number.to_bytes(8, "big"), checkpoint=row.sequence_number)
            last = i == min(len(rows), limit) - 1
            end = None
            if last:
                reason = rpc.QueryEndReason.ITEM_LIMIT if len(rows) > limit else rpc.QueryEndReason.LEDGER_TIP
                end = rpc.QueryEnd(reason=reason)
            yield rpc.ListCheckpointsResponse(checkpoint=self._checkpoint(row), watermark=mark, end=end)
        if not rows:
            yield rpc.ListCheckpointsResponse(end=rpc.QueryEnd(reason=rpc.QueryEndReason.LEDGER_TIP))

    async def list_events(self, request: rpc.ListEventsRequest) -> AsyncIterator[rpc.ListEventsResponse]:
        for frame in page_events(self.ledger.state, request):
            yield frame

    # StateService -----------------------------------------------------------------------------
    async def list_owned_objects(self, request: rpc.ListOwnedObjectsRequest) -> rpc.ListOwnedObjectsResponse:
        owner = _address(request.owner, "owner")
        type_filter = None
        if request.object_type:
            try:
                type_filter = normalize_type(request.object_type)
            except MoveTypeError as exc:
                raise _invalid(f"object_type: {exc}") from None
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = request.page_token.decode() if request.page_token else ""
        objects = self.ledger.state.owned_objects(owner, type_filter, after, size + 1)
        layouts = self.ledger.layouts()
        page = objects[:size]
        token = page[-1].id.encode() if len(objects) > size else None
        return rpc.ListOwnedObjectsResponse(objects=[proto.move_object(o, layouts) for o in page],
                                            next_page_token=token)

    async def list_dynamic_fields(self, request: rpc.ListDynamicFieldsRequest) -> rpc.ListDynamicFieldsResponse:
        """The parent's dynamic fields in id order, paged like ListOwnedObjects."""
        parent = _address(request.parent, "parent")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = request.page_token.decode() if request.page_token else ""
        fields = self.ledger.state.children(parent, after, size + 1)
        layouts = self.ledger.layouts()
        page = fields[:size]
        return rpc.ListDynamicFieldsResponse(
            dynamic_fields=[proto.dynamic_field(f, layouts) for f in page],
            next_page_token=page[-1].id.encode() if len(fields) > size else None,
        )

    def _sui_balance(self, owner: str) -> int:
        coins = self.ledger.state.owned_objects(owner, COIN_TYPE, "", 1_000_000)
        return sum(c.fields["balance"] for c in coins)

    async def get_balance(self, request: rpc.GetBalanceRequest) -> rpc.GetBalanceResponse:
        owner = _address(request.owner, "owner")
        coin_type = normalize_type(request.coin_type or SUI_TYPE)
        total = self._sui_balance(owner) if coin_type == SUI_TYPE else 0
        return rpc.GetBalanceResponse(balance=rpc.Balance(coin_type=coin_type, balance=total, coin_balance=total,
                                                          address_balance=0))

    async def list_balances(self, request: rpc.ListBalancesRequest) -> rpc.ListBalancesResponse:
        total = self._sui_balance(_address(request.owner, "owner"))
        balances = (
            [rpc.Balance(coin_type=SUI_TYPE, balance=total, coin_balance=total, address_balance=0)] if total else []
        )
        return rpc.ListBalancesResponse(balances=balances)

    async def get_coin_info(self, request: rpc.GetCoinInfoRequest) -> rpc.GetCoinInfoResponse:
        if normalize_type(request.coin_type or "") != SUI_TYPE:
            raise _not_found(f"coin type {request.coin_type}")
        return rpc.GetCoinInfoResponse(coin_type=SUI_TYPE, metadata=rpc.CoinMetadata(
            decimals=9, name="Sui", symbol="SUI", description="Local stand-in SUI"))

    # MovePackageService -------------------------------------------------------------------------
    async def get_function(self, request: rpc.GetFunctionRequest) -> rpc.GetFunctionResponse:
        pkg = self.ledger.package(_address(request.package_id, "package_id"))
        module = pkg.module(request.module_name or "") if pkg else None
        fn = module.function(request.name or "") if module else None
        if pkg is None or fn is None:
            raise _not_found(f"function {request.package_id}::{request.module_name}::{request.name}")
        return rpc.GetFunctionResponse(function=proto.function_descriptor(pkg, fn))

    async def get_package(self, request: rpc.GetPackageRequest) -> rpc.GetPackageResponse:
        pkg = self.ledger.package(_address(request.package_id, "package_id"))
        if pkg is None:
            raise _not_found(f"package {request.package_id}")
        return rpc.GetPackageResponse(package=proto.package(pkg, self.ledger.get_object(pkg.package_id)))

    # TransactionExecutionService ----------------------------------------------------------------
    async def simulate_transaction(self, request: rpc.SimulateTransactionRequest
                                   ) -> rpc.SimulateTransactionResponse:
        if request.transaction is None:
            raise _invalid("transaction is required")
        return self.ledger.simulate(request_from_proto(request.transaction))

    async def execute_transaction(self, request: rpc.ExecuteTransactionRequest) -> rpc.ExecuteTransactionResponse:
        tx = request.transaction
        if tx is None or tx.bcs is None or not tx.bcs.value:
            raise _invalid("transaction.bcs is required")
        signatures = [s.bcs.value for s in request.signatures if s.bcs is not None and s.bcs.value]
        executed = self.ledger.execute(tx.bcs.value, signatures)
        return rpc.ExecuteTransactionResponse(transaction=executed)

    # SubscriptionService --------------------------------------------------------------------------
    async def _checkpoints_after(self, sequence_number: int) -> AsyncIterator[CheckpointRow]:
        """Every checkpoint after ``sequence_number`` as it is committed (by this or another process)."""
        seen = sequence_number
        while True:
            rows = self.ledger.state.checkpoints_after(seen)
            for row in rows:
                seen = row.sequence_number
                yield row
            if not rows:
                await asyncio.sleep(POLL_INTERVAL_S)

    def _tip(self) -> CheckpointRow:
        latest = self.ledger.state.latest_checkpoint()
        assert latest is not None
        return latest

    async def subscribe_checkpoints(self, request: rpc.SubscribeCheckpointsRequest
                                    ) -> AsyncIterator[rpc.SubscribeCheckpointsResponse]:
        """Begins at the latest executed checkpoint (first frame), as a full node does."""
        tip = self._tip()
        yield rpc.SubscribeCheckpointsResponse(cursor=tip.sequence_number, checkpoint=self._checkpoint(tip))
        async for row in self._checkpoints_after(tip.sequence_number):
            yield rpc.SubscribeCheckpointsResponse(cursor=row.sequence_number, checkpoint=self._checkpoint(row))

    async def subscribe_events(self, request: rpc.SubscribeEventsRequest
                               ) -> AsyncIterator[rpc.SubscribeEventsResponse]:
        """A progress-only first frame at the tip, then matching events of later checkpoints."""
        tip = self._tip()
        yield rpc.SubscribeEventsResponse(watermark=rpc.Watermark(checkpoint=tip.sequence_number))
        async for row in self._checkpoints_after(tip.sequence_number):
            for ev in self.ledger.state.events(row.sequence_number, row.sequence_number + 1, None):
                if event_matches(request.filter, ev):
                    yield rpc.SubscribeEventsResponse(
                        event=rpc.Event.parse(ev.body),
                        watermark=rpc.Watermark(cursor=event_cursor(ev.checkpoint, ev.event_index),
                                                checkpoint=ev.checkpoint),
                    )


def _status(exc: GRPCError) -> google_rpc.Status:
    return google_rpc.Status(code=exc.status.value, message=exc.message or "")
