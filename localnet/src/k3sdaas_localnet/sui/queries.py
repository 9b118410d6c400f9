"""Event queries: DNF filters (``EventFilter``) and the ``ListEvents`` stream with its watermarks."""

from __future__ import annotations

from collections.abc import Iterator

from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from .movetypes import MoveTypeError, normalize_address, normalize_type
from .state import ChainState, EventRow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class InvalidRequest(ValueError):
    """A filter or cursor the node cannot use (answered as INVALID_ARGUMENT)."""


def event_cursor(checkpoint: int, index: int) -> bytes:
    return checkpoint.to_bytes(8, "big") + index.to_bytes(8, "big")


def _parse_cursor(cursor: bytes | None) -> tuple[int, int] | None:
    if not cursor:
        return None
    if len(cursor) != 16:
        raise InvalidRequest("options cursor is not one this node issued (16 bytes expected)")
    return int.from_bytes(cursor[:8], "big"), int.from_bytes(cursor[8:], "big")


def limit_of(options: rpc.QueryOptions | None) -> int:
    return min((options.limit if options and options.limit else DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)


def _type_matches(pattern: str, event_type: str) -> bool:
    """``0xaddr`` / ``0xaddr::module`` / ``0xaddr::module::Name`` / exact instantiation."""
    if "<" in pattern:
        return normalize_type(pattern) == event_type
    parts = pattern.split("::")
    parts[0] = normalize_address(parts[0])
    have = event_type.split("<", 1)[0].split("::")
    return have[: len(parts)] == parts


def _literal_matches(literal: rpc.EventLiteral, row: EventRow) -> bool:
    if literal.sender is not None:
        hit = row.sender == normalize_address(literal.sender.address or "")
    elif literal.emit_module is not None:
        parts = (literal.emit_module.module or "").split("::")
        hit = normalize_address(parts[0]) == row.package_id and (len(parts) == 1 or parts[1] == row.module)
    elif literal.event_type is not None:
        hit = _type_matches(literal.event_type.event_type or "", row.event_type)
    else:
        raise InvalidRequest("event filter literal without a supported predicate (sender, emit_module, event_type)")
    return hit != literal.negated


def event_matches(event_filter: rpc.EventFilter | None, row: EventRow) -> bool:
    """OR over terms of AND over literals; no filter matches everything."""
    if event_filter is None or not event_filter.terms:
        return True
    try:
        return any(all(_literal_matches(lit, row) for lit in term.literals) for term in event_filter.terms)
    except MoveTypeError as exc:
        raise InvalidRequest(f"event filter: {exc}") from None


def page_events(state: ChainState, request: rpc.ListEventsRequest) -> Iterator[rpc.ListEventsResponse]:
    """Frames of a ListEvents answer: matching events with watermarks, the last frame carrying ``end``."""
    options = request.options
    descending = options is not None and options.ordering == rpc.Ordering.DESCENDING
    after = _parse_cursor(options.before if descending else options.after) if options else None
    limit = limit_of(options)
    latest = state.latest_checkpoint()
    assert latest is not None
    matched: list[EventRow] = []
    rows = state.events(request.start_checkpoint or 0, request.end_checkpoint, after, descending)
    for row in rows:
        if event_matches(request.filter, row):
            matched.append(row)
            if len(matched) > limit:
                break
    page = matched[:limit]
    for i, row in enumerate(page):
        frame = rpc.ListEventsResponse(
            event=rpc.Event.parse(row.body),
            watermark=rpc.Watermark(cursor=event_cursor(row.checkpoint, row.event_index), checkpoint=row.checkpoint),
        )
        if i == len(page) - 1 and len(matched) > limit:
            frame.end = rpc.QueryEnd(reason=rpc.QueryEndReason.ITEM_LIMIT)
        yield frame
    if len(matched) <= limit:
        end = request.end_checkpoint
        bounded = end is not None and end <= latest.sequence_number
        last = page[-1] if page else None
        yield rpc.ListEventsResponse(
            watermark=rpc.Watermark(
                cursor=event_cursor(last.checkpoint, last.event_index) if last else None,
                checkpoint=end - 1 if end is not None and bounded else latest.sequence_number,
            ),
            end=rpc.QueryEnd(reason=rpc.QueryEndReason.CHECKPOINT_BOUND if bounded else rpc.QueryEndReason.LEDGER_TIP),
        )
