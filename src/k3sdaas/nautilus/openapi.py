"""The OpenAPI 3.1 description of the master's API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

HEX_ID = {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}
PROOF = {
    "token_id": HEX_ID,
    "address": HEX_ID,
    "nonce": {"type": "string", "description": "from POST /api/v1/challenge"},
    "issued_at": {"type": "integer", "description": "milliseconds since the epoch, the signer's clock"},
    "audience": {"type": "string", "description": "this master's URL"},
    "signature": {"type": "string", "description": "Sui personal-message signature (base64 flag‖sig‖pubkey) of "
                                                   "the challenge text"},
}
ERROR = {"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": bool(required), "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _op(summary: str, *, body: dict[str, Any] | None = None, secured: bool = False,
        errors: tuple[int, ...] = (400,)) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK", "content": {
        "application/json": {"schema": {"type": "object"}}}}}}
    if body is not None:
        operation["requestBody"] = body
    if secured:
        operation["security"] = [{"session": []}]
        errors = (*errors, 401)
    for status in errors:
        operation["responses"][str(status)] = ERROR
    return operation


def spec(server_url: str) -> dict[str, Any]:
    proof_fields = list(PROOF)
    worker = {**PROOF, "node_id": {"type": "string"}, "ip": {"type": "string"},
              "capacity": {"type": "object", "additionalProperties": {"type": ["number", "string"]}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "K3s-DaaS Nautilus master", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": {
            "/api/v1/challenge": {"post": _op("A single-use nonce to sign", body=_body({}, []))},
            "/api/v1/auth": {"post": _op("Seal proof → session", body=_body(PROOF, proof_fields),
                                         errors=(400, 401, 403, 413, 503))},
            "/api/v1/attestation": {"post": _op("The enclave's attestation document", body=_body(
                {"nonce": {"type": "string", "description": "hex or base64, up to 512 bytes"}}, []),
                errors=(400, 503))},
            "/api/v1/security-context": {"get": _op("The caller's identity, tier and groups", secured=True)},
            "/api/v1/register-worker": {"post": _op("Seal proof of a node → join material", body=_body(
                worker, [*proof_fields, "node_id", "ip"]), errors=(400, 401, 403, 413, 503))},
            "/api/v1/nodes/heartbeat": {"post": _op("A worker's heartbeat", secured=True, body=_body(
                {"metrics": {"type": "object", "additionalProperties": {"type": "number"}}}, []),
                errors=(400, 403, 404))},
            "/api/v1/nodes": {"get": _op("Registered workers, Ready or NotReady", secured=True)},
            "/api/v1/staking/status": {"get": _op("The caller's stake and the pool", secured=True,
                                                  errors=(403, 503))},
            "/audit/proof": {"get": _op("The inclusion proof of the audit record of a request sent with "
                                        "X-Request-Id (admin tier)", secured=True, errors=(400, 403, 404, 409))
                             | {"parameters": [{"name": "request_id", "in": "query", "required": True,
                                                "schema": {"type": "string", "maxLength": 128}}]}},
            "/health": {"get": _op("Liveness and chain status", errors=())},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OK"}}}},
            "/openapi.json": {"get": _op("This document", errors=())},
        },
        "components": {
            "securitySchemes": {"session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"},
                "reason": {"type": "string"}}}},
        },
    }
