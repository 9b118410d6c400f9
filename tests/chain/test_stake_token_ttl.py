"""A SealToken with a lifetime of its own (``ChainClient.stake(token_ttl_ms=...)`` and the ``token_ttl_ms``
option of ``k3sdaas.core.sui_stake``), against the Sui node stand-in: the pool's lifetime is set, the token
minted and the lifetime set back in one transaction, so the pool and every other token keep the pool's."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.playbook import PlaybookRun, run_playbook
from helpers.sui import no_transaction_reaches
from k3sdaas.chain import ChainClient, ChainSettings, Deployment, InvalidArgument, NotOwner, Signer, normalize_address
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import SUI, new_signer

Settings = Callable[..., ChainSettings]
BAD_TTLS: list[Any] = [0, -1, "x", 2**64, True, 1.5]


@pytest.fixture
async def dry(operator: Signer, settings_for: Settings, deployment: Deployment):
    async with ChainClient(settings_for(operator), deployment, dry_run=True) as client:
        yield client


def near_pool_lifetime(seconds_left: int, pool_ttl_ms: int) -> bool:
    return pool_ttl_ms // 1000 - 10 <= seconds_left <= pool_ttl_ms // 1000


async def test_a_1_ms_token_is_expired_and_the_pool_keeps_its_lifetime(client: ChainClient, node_id: str) -> None:
    pool_ttl_ms = (await client.pool_state()).token_ttl_ms
    token = await client.stake(node_id, SUI, token_ttl_ms=1)
    assert (token.node_id, token.stake_mist, token.tier, token.owner) == (node_id, SUI, 1, client.address)
    await asyncio.sleep(0.01)  # the stand-in's clock is the wall clock: be sure at least 1 ms has passed
    token = await client.get_token(token.token_id)
    assert (token.valid, token.seconds_left()) == (False, 0)
    assert token.chain_time_ms > token.expires_at_ms
    assert (await client.pool_state()).token_ttl_ms == pool_ttl_ms
    # the next token minted has the pool's lifetime
    normal = await client.stake(f"{node_id}-next", SUI)
    assert normal.valid and near_pool_lifetime(normal.seconds_left(), pool_ttl_ms)
    assert normal.expires_at_ms - token.expires_at_ms >= pool_ttl_ms - 60_000


async def test_the_lifetime_is_the_tokens_own_and_set_back_in_the_same_transaction(
        client: ChainClient, node_id: str) -> None:
    pool_ttl_ms = (await client.pool_state()).token_ttl_ms
    token = await client.stake(node_id, 2 * SUI, token_ttl_ms=60_000)
    assert token.valid and 50 <= token.seconds_left() <= 60 and token.tier == 2
    events = [e async for e in client.events(["PoolConfigUpdated", "Staked"])]
    [staked] = [e for e in events if e.name == "Staked" and normalize_address(e.fields["token_id"]) == token.token_id]
    in_tx = [(e.name, int(e.fields.get("token_ttl_ms", 0))) for e in events if e.tx_digest == staked.tx_digest]
    assert in_tx == [("PoolConfigUpdated", 60_000), ("Staked", 0), ("PoolConfigUpdated", pool_ttl_ms)]
    assert int(staked.fields["expires_at_ms"]) == token.expires_at_ms
    assert (await client.pool_state()).token_ttl_ms == pool_ttl_ms


async def test_a_signer_without_the_admin_cap_is_refused_and_nothing_is_staked(
        node: LocalNode, settings_for: Settings, deployment: Deployment, client: ChainClient, node_id: str) -> None:
    other = new_signer()
    node.faucet(other.address, 10 * SUI)
    pool = await client.pool_state()
    async with ChainClient(settings_for(other), deployment) as stranger:
        with no_transaction_reaches(node), pytest.raises(NotOwner) as caught:
            await stranger.stake(node_id, SUI, token_ttl_ms=1)
        assert caught.value.field == "key_file" and "AdminCap" in str(caught.value), caught.value
        assert await stranger.balance() == 10 * SUI
        # without token_ttl_ms the same signer stakes as before: only the lifetime needs the AdminCap
        assert (await stranger.stake(f"{node_id}-plain", SUI)).valid
    assert await client.find_token(node_id) is None
    assert (await client.pool_state()).token_ttl_ms == pool.token_ttl_ms


@pytest.mark.parametrize("bad", BAD_TTLS, ids=repr)
async def test_a_bad_token_ttl_ms_is_refused_before_anything_is_sent(
        node: LocalNode, client: ChainClient, node_id: str, bad: Any) -> None:
    with no_transaction_reaches(node, reads=False), pytest.raises(InvalidArgument) as caught:
        await client.stake(node_id, SUI, token_ttl_ms=bad)
    assert caught.value.field == "token_ttl_ms" and "token_ttl_ms" in str(caught.value)
    assert await client.find_token(node_id) is None


async def test_a_dry_run_with_a_lifetime_is_simulated_and_commits_nothing(
        node: LocalNode, dry: ChainClient, client: ChainClient, node_id: str) -> None:
    pool_ttl_ms = (await client.pool_state()).token_ttl_ms
    with no_transaction_reaches(node):
        token = await dry.stake(node_id, SUI, token_ttl_ms=60_000)
        assert token.valid and 50 <= token.seconds_left() <= 60
        assert (await dry.pool_state()).token_ttl_ms == pool_ttl_ms  # the simulated pool, set back too
    assert ("/sui.rpc.v2.TransactionExecutionService/SimulateTransaction", "OK") in node.service_log()
    assert await client.find_token(node_id) is None
    assert (await client.pool_state()).token_ttl_ms == pool_ttl_ms


# ----- the sui_stake module, through ansible-playbook ---------------------------------------------------------


@pytest.fixture
def no_sui_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUI_RPC_URL", "SUI_KEY_FILE", "SUI_PRIVATE_KEY", "SUI_CA_FILE", "K3SDAAS_PACKAGE_ID"):
        monkeypatch.delenv(name, raising=False)


def write_key(tmp_path: Path, signer: Signer, name: str = "signer.key") -> Path:
    path = tmp_path / name
    path.write_text(signer.keystring)
    path.chmod(0o600)
    return path


def stake_play(tmp_path: Path, tasks: list[dict[str, Any]], name: str = "stake.yml") -> Path:
    playbook = tmp_path / name
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return playbook


def results(run: PlaybookRun) -> list[dict[str, Any]]:
    return [result for _name, result in run.results()]


@pytest.fixture
def stake_args(node: LocalNode, deployment: Deployment, operator: Signer, tmp_path: Path,
               no_sui_env: None) -> dict[str, Any]:
    return {"rpc_url": node.url, "ca_file": str(node.ca_path), "key_file": str(write_key(tmp_path, operator)),
            "timeout": 10, "retries": 0, "package_id": deployment.package_id}


def chain_state(client_settings: ChainSettings, deployment: Deployment, node_ids: list[str]) -> dict[str, Any]:
    """The pool, the signer's balance and the nodes' tokens, read with a fresh client."""

    async def read() -> dict[str, Any]:
        async with ChainClient(client_settings, deployment) as client:
            return {"pool": (await client.pool_state()).as_dict(), "balance": await client.balance(),
                    "tokens": {n: await client.token_for_node(n) for n in node_ids}}

    return asyncio.run(read())


@pytest.mark.slow
def test_sui_stake_mints_an_expired_token_once_and_check_mode_stakes_nothing(
        node: LocalNode, deployment: Deployment, operator: Signer, settings_for: Settings,
        stake_args: dict[str, Any], tmp_path: Path) -> None:
    node_id = f"expired-{uuid.uuid4().hex[:8]}"
    task = {"name": "expired token", "k3sdaas.core.sui_stake": dict(stake_args, node_id=node_id, amount=0.5,
                                                                     token_ttl_ms=1), "register": "expired"}
    playbook = stake_play(tmp_path, [task])
    before = chain_state(settings_for(operator), deployment, [node_id])
    assert before["tokens"][node_id] is None

    with no_transaction_reaches(node):
        check = run_playbook(playbook, local=True, check=True)
    [checked] = results(check)
    assert checked.get("changed") is True and not checked.get("failed"), check.output[-3000:]
    assert checked["token"]["node_id"] == node_id and checked["added_mist"] == SUI // 2
    assert chain_state(settings_for(operator), deployment, [node_id]) == before  # nothing staked, pool as it was

    real = run_playbook(playbook, local=True)
    [staked] = results(real)
    assert staked.get("changed") is True and not staked.get("failed"), real.output[-3000:]
    token = staked["token"]
    assert (token["node_id"], token["stake_mist"], token["tier_name"]) == (node_id, SUI // 2, "viewer")
    assert (token["valid"], token["seconds_left"]) == (False, 0), token
    after = chain_state(settings_for(operator), deployment, [node_id])
    assert after["pool"]["token_ttl_ms"] == before["pool"]["token_ttl_ms"]
    assert after["tokens"][node_id] == token["id"]

    with no_transaction_reaches(node):  # the node has a token: token_ttl_ms is ignored, nothing changes
        again = run_playbook(playbook, local=True)
    [rerun] = results(again)
    assert rerun.get("changed") is False and not rerun.get("failed"), again.output[-3000:]
    assert rerun["token"]["id"] == token["id"] and rerun["token"]["valid"] is False

    # a token minted afterwards, without token_ttl_ms, has the pool's lifetime
    plain = run_playbook(stake_play(tmp_path, [{"name": "plain", "k3sdaas.core.sui_stake": dict(
        stake_args, node_id=f"{node_id}-plain", amount=0.5)}], "plain.yml"), local=True)
    [normal] = results(plain)
    assert normal.get("changed") is True, plain.output[-3000:]
    assert normal["token"]["valid"] is True
    assert near_pool_lifetime(normal["token"]["seconds_left"], before["pool"]["token_ttl_ms"])


@pytest.mark.slow
@pytest.mark.parametrize("check", [False, True])
def test_sui_stake_with_a_lifetime_needs_the_admin_cap(
        node: LocalNode, deployment: Deployment, operator: Signer, settings_for: Settings,
        stake_args: dict[str, Any], tmp_path: Path, check: bool) -> None:
    stranger = new_signer()
    node.faucet(stranger.address, 10 * SUI)
    node_id = f"stranger-{uuid.uuid4().hex[:8]}"
    args = dict(stake_args, key_file=str(write_key(tmp_path, stranger, "stranger.key")), node_id=node_id,
                amount=1, token_ttl_ms=1)
    playbook = stake_play(tmp_path, [{"name": "no AdminCap", "k3sdaas.core.sui_stake": args,
                                      "ignore_errors": True}])
    before = chain_state(settings_for(stranger), deployment, [node_id])
    with no_transaction_reaches(node):
        run = run_playbook(playbook, local=True, check=check)
    [result] = results(run)
    assert result.get("failed") is True and not result.get("changed"), result
    assert result["field"] == "key_file" and "AdminCap" in result["msg"], result
    assert result["error_type"] == "NotOwner", result
    assert chain_state(settings_for(stranger), deployment, [node_id]) == before


@pytest.mark.slow
def test_sui_stake_refuses_bad_token_ttl_ms_and_changes_nothing(
        node: LocalNode, deployment: Deployment, operator: Signer, settings_for: Settings,
        stake_args: dict[str, Any], tmp_path: Path) -> None:
    node_id = f"bad-ttl-{uuid.uuid4().hex[:8]}"
    bad = [0, -1, "x", 2**64]
    tasks = [{"name": f"token_ttl_ms={value!r}", "ignore_errors": True,
              "k3sdaas.core.sui_stake": dict(stake_args, node_id=node_id, amount=1, token_ttl_ms=value)}
             for value in bad]
    before = chain_state(settings_for(operator), deployment, [node_id])
    with no_transaction_reaches(node, reads=False):  # refused before the module connects
        run = run_playbook(stake_play(tmp_path, tasks), local=True)
    found = results(run)
    assert len(found) == len(bad), run.output[-3000:]
    for value, result in zip(bad, found, strict=True):
        assert result.get("failed") is True and not result.get("changed"), (value, result)
        assert "token_ttl_ms" in result["msg"], (value, result)
        if value != "x":  # "x" is refused by Ansible's own int conversion, which names the option only
            assert result["field"] == "token_ttl_ms", (value, result)
    assert chain_state(settings_for(operator), deployment, [node_id]) == before
