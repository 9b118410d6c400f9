"""``GET /audit/proof?request_id=ID``: the inclusion proof of one request's audit record, for the admin tier.

A client that sent ``X-Request-Id: ID`` asks, once the record's batch is anchored, for the proof that
``k3sdaas-nautilus audit check-proof`` checks against the chain on its own machine: this is how the
operator sees, without access to the enclave's disk, that a request was recorded and anchored. Records
hold identities and paths, so only the admin tier and above may read them. 404 while the master does
not know the id (not written yet, or older than the last ``RECENT_REQUEST_IDS`` ids), 409 while its
batch is not anchored, each with a JSON error body; the caller retries.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..chain.abi import tier_name
from .audit import MAX_REQUEST_ID_CHARS, RECENT_REQUEST_IDS, AuditError, AuditLog, prove, read_anchors
from .errors import ApiError, bad_request, forbidden

PATH = "/audit/proof"
MIN_TIER = 3  # admin


def route(master: Any, audit: AuditLog) -> Route:
    one_at_a_time = asyncio.Semaphore(1)  # a proof re-reads the whole log: never several at once

    async def endpoint(request: Request) -> Response:
        _, tier = master.authenticate(request.headers.get("authorization"))
        if tier < MIN_TIER:
            raise forbidden("tier_too_low", f"audit proofs are for the {tier_name(MIN_TIER)} tier and above, "
                                            f"this session is {tier_name(tier)}")
        request_id = request.query_params.get("request_id", "")
        if not 0 < len(request_id) <= MAX_REQUEST_ID_CHARS:
            raise bad_request(f"request_id must be 1 to {MAX_REQUEST_ID_CHARS} characters", "request_id")
        seq = audit.seq_of(request_id)
        if seq is None:
            raise ApiError(404, "audit_record_unknown", f"no audit record with request id {request_id!r} among "
                           f"the last {RECENT_REQUEST_IDS} (not written yet, or older)", field="request_id")
        if seq >= audit.anchored_seq:
            raise ApiError(409, "audit_not_anchored", f"audit record seq {seq} is not anchored on chain yet; "
                           "ask again in a few seconds", seq=seq)
        async with one_at_a_time:
            anchors = await read_anchors(await master.chain.client())
            try:
                proof = await asyncio.to_thread(prove, audit.path, seq, anchors)
            except AuditError as exc:  # anchored, but the event not readable from the chain yet
                raise ApiError(409, "audit_not_anchored", str(exc), seq=seq) from None
        return JSONResponse(proof)

    return Route(PATH, endpoint, methods=["GET"])
