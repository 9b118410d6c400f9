"""Fixtures: a running stand-in node, pysui clients trusting its CA, the published k3s_daas package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysui.sui.sui_common.sui_commands as cmd
import pytest
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import Account, LocalNode, TrustingGrpcClient, make_account, running_node

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "move" / "sources"
K3S_MODULES = ["staking", "registry", "k8s_gateway"]
SUI = 1_000_000_000


def publish_modules() -> list[bytes]:
    """The stand-in's publish payload for move/sources (see k3sdaas_localnet.sui.publish)."""
    return module_markers("k3s_daas", SOURCES, K3S_MODULES)


@dataclass
class Deployment:
    package: str
    pool: str
    registry: str
    admin_cap: str
    upgrade_cap: str
    publish: rpc.ExecutedTransaction


class Chain:
    """Helpers over one pysui client, used by the tests."""

    def __init__(self, client: TrustingGrpcClient, account: Account) -> None:
        self.client, self.account = client, account

    async def execute(self, txn: Any, **build: Any) -> rpc.ExecutedTransaction:
        """Build, sign and execute; fail on a transport error (a Move abort is a normal result)."""
        signed = await txn.build_and_sign(**build)
        result = await self.client.execute(command=cmd.ExecuteTransaction(**signed))
        assert result.is_ok(), result.result_string
        return result.result_data

    async def object(self, object_id: str) -> rpc.Object:
        result = await self.client.execute(command=cmd.GetObject(object_id=object_id))
        assert result.is_ok(), result.result_string
        return result.result_data

    @staticmethod
    def created(executed: rpc.ExecutedTransaction, type_suffix: str) -> list[str]:
        return [c.object_id for c in executed.effects.changed_objects
                if c.id_operation == rpc.ChangedObjectIdOperation.CREATED
                and (c.object_type or "").endswith(type_suffix)]

    async def publish(self) -> Deployment:
        txn = await self.client.transaction()
        cap = txn.builder.publish([list(m) for m in publish_modules()], [])
        await txn.transfer_objects(transfers=[cap], recipient=self.account.address)
        executed = await self.execute(txn)
        assert executed.effects.status.success, executed.effects.status
        package = next(c.object_id for c in executed.effects.changed_objects
                       if c.output_state == rpc.ChangedObjectOutputObjectState.PACKAGE_WRITE)
        return Deployment(
            package=package,
            pool=self.created(executed, "::staking::StakePool")[0],
            registry=self.created(executed, "::registry::EnclaveRegistry")[0],
            admin_cap=self.created(executed, "::staking::AdminCap")[0],
            upgrade_cap=self.created(executed, "::package::UpgradeCap")[0],
            publish=executed,
        )

    async def call(self, dep: Deployment, target: str, arguments: list[Any], *, pay: int | None = None
                   ) -> rpc.ExecutedTransaction:
        """One MoveCall to ``module::function`` of the package; ``pay`` splits a coin from gas as the
        argument written ``"$coin"``."""
        txn = await self.client.transaction()
        if pay is not None:
            coin = await txn.split_coin(coin=txn.gas, amounts=[pay])
            arguments = [coin if a == "$coin" else a for a in arguments]
        await txn.move_call(target=f"{dep.package}::{target}", arguments=arguments)
        return await self.execute(txn)

    async def stake(self, dep: Deployment, amount: int, node_id: bytes, owner: str | None = None
                    ) -> rpc.ExecutedTransaction:
        return await self.call(dep, "staking::stake_and_mint_seal",
                               [dep.pool, "$coin", node_id, owner or self.account.address, "0x6"], pay=amount)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LocalNode]:
    with running_node(tmp_path / "chain") as running:
        yield running


@pytest.fixture
def alice(node: LocalNode, tmp_path: Path) -> Account:
    account = make_account(node, tmp_path / "alice")
    node.faucet(account.address, 100 * SUI)
    return account


@pytest.fixture
def bob(node: LocalNode, tmp_path: Path) -> Account:
    account = make_account(node, tmp_path / "bob")
    node.faucet(account.address, 100 * SUI)
    return account


@pytest.fixture
async def chain(alice: Account) -> AsyncIterator[Chain]:
    async with alice.client() as client:
        yield Chain(client, alice)


@pytest.fixture
async def deployed(chain: Chain) -> Deployment:
    return await chain.publish()
