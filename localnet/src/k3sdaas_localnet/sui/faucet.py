"""Funding addresses: in-process/CLI (:func:`fund_address`) and over HTTP like Sui's faucet.

The HTTP faucet answers ``POST /v2/gas`` with body ``{"FixedAmountRequest": {"recipient": "0x…"}}``,
as the devnet/testnet faucets do, so a client can use one code path for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .ledger import Ledger
from .movetypes import MoveTypeError

MIST_PER_SUI = 1_000_000_000
DEFAULT_AMOUNT = 1_000 * MIST_PER_SUI


def fund_address(state_dir: Path, address: str, amount: int = DEFAULT_AMOUNT) -> str:
    """Mint a ``Coin<SUI>`` of ``amount`` MIST to ``address``; return the faucet transaction digest."""
    ledger = Ledger(Path(state_dir))
    try:
        return ledger.fund(address, amount).digest
    finally:
        ledger.close()


def _failure(message: str, status: int) -> JSONResponse:
    return JSONResponse({"status": {"Failure": {"Internal": message}}, "coins_sent": None}, status_code=status)


def faucet_app(state_dir: Path, amount: int = DEFAULT_AMOUNT) -> Starlette:
    """The HTTP faucet for the chain in ``state_dir`` (its own database connection)."""
    ledger = Ledger(Path(state_dir))

    async def gas(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            recipient = body["FixedAmountRequest"]["recipient"]
        except (ValueError, KeyError, TypeError):
            return _failure('body must be {"FixedAmountRequest": {"recipient": "0x…"}}', 400)
        try:
            funded = ledger.fund(str(recipient), amount)
        except MoveTypeError as exc:
            return _failure(f"FixedAmountRequest.recipient: {exc}", 400)
        return JSONResponse({
            "status": "Success",
            "coins_sent": [{"amount": amount, "id": funded.coin_id, "transferTxDigest": funded.digest}],
        })

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            ledger.close()

    return Starlette(routes=[Route("/v2/gas", gas, methods=["POST"])], lifespan=lifespan)
