# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument handling of the Sui modules: everything decided before the first RPC."""

from __future__ import annotations

import json
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.k3sdaas.core.plugins.module_utils import sui as sui_utils
from ansible_collections.k3sdaas.core.plugins.modules import seal_token, sui_pool, sui_publish, sui_slash, sui_stake
from k3sdaas.chain import SealToken, TokenExpired, InsufficientStake

# A syntactically valid key that never reaches a node in these tests.
KEY = "suiprivkey1qzvcrv96779l62cyctck9feefcywh7mw6edc9stkvsscqr78ens8ks8624p"
PACKAGE = "0x" + "ab" * 32
BASE = {"rpc_url": "127.0.0.1:9", "private_key": KEY, "package_id": PACKAGE}


def run_module(main, args, capsys):
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    basic._ANSIBLE_PROFILE = "legacy"
    with pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("main", "args", "field", "text"),
    [
        (sui_stake.main, {"node_id": "w1", "amount": "two"}, "amount", "must look like"),
        (sui_stake.main, {"node_id": "w1", "amount": 0}, "amount", "positive"),
        (sui_stake.main, {"node_id": "w1", "amount": "0.0000000001"}, "amount", "finer than"),
        (sui_stake.main, {"node_id": "w1", "amount": 2, "owner": "node-1"}, "owner", "64 hex"),
        (seal_token.main, {"token_id": "0xzz"}, "token_id", "64 hex"),
        (seal_token.main, {"node_id": "w1", "min_tier": "root"}, "min_tier", "unknown tier"),
        (sui_slash.main, {"node_id": "w1", "reason": "x", "bps": 0}, "bps", "at least 1 and at most 10000"),
        (sui_slash.main, {"node_id": "w1", "reason": "x" * 16382}, "reason", "max_pure_argument_size"),
        (sui_slash.main, {"node_id": "w1", "reason": "  "}, "reason", "empty"),
        (sui_pool.main, {"token_ttl_ms": 0}, "token_ttl_ms", "at least 1 and at most 18446744073709551615"),
        (sui_pool.main, {"token_ttl_ms": 2**64}, "token_ttl_ms", "got 18446744073709551616"),
        (sui_pool.main, {"unstake_cooldown_ms": -1}, "unstake_cooldown_ms", "at least 0"),
        (sui_pool.main, {"timeout": "nan"}, "timeout", "got nan"),
        (sui_pool.main, {"retries": 2000}, "retries", "0 to 10"),
        (sui_pool.main, {"rpc_url": "https://[::1"}, "rpc_url", "not a valid URL"),
        (seal_token.main, {"node_id": "w1", "min_tier": "0"}, "min_tier", "requires nothing"),
        (seal_token.main, {"node_id": "w1", "min_valid_for": -1}, "min_valid_for", "at least 0"),
        (seal_token.main, {"node_id": "w1", "refresh_within": -1}, "refresh_within", "at least 0"),
        (sui_publish.main, {"package_id": "abc"}, "package_id", "64 hex"),
    ],
)
def test_bad_options_fail_naming_the_option(main, args, field, text, capsys):
    out = run_module(main, dict(BASE, **args), capsys)
    assert out["failed"] is True
    assert out["field"] == field
    assert text in out["msg"]


@pytest.mark.parametrize(
    ("main", "args", "text"),
    [
        (sui_stake.main, {"node_id": "w1"}, "state is present but all of the following are missing: amount"),
        (seal_token.main, {"token_id": PACKAGE, "node_id": "w1"}, "mutually exclusive"),
        (seal_token.main, {}, "one of the following is required: token_id, node_id"),
        (sui_slash.main, {"node_id": "w1"}, "missing required arguments: reason"),
    ],
)
def test_option_combinations(main, args, text, capsys):
    out = run_module(main, dict(BASE, **args), capsys)
    assert out["failed"] is True
    assert text in out["msg"]


def test_a_signing_key_is_required_once(capsys, monkeypatch):
    for name in ("SUI_KEY_FILE", "SUI_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    out = run_module(sui_stake.main, {"rpc_url": "x:1", "package_id": PACKAGE, "node_id": "w", "amount": 1}, capsys)
    assert "key_file, private_key" in out["msg"]
    both = dict(BASE, key_file="/nonexistent", node_id="w", amount=1)
    assert "mutually exclusive" in run_module(sui_stake.main, both, capsys)["msg"]


def test_connection_options_come_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("SUI_RPC_URL", "http://plaintext:80")
    monkeypatch.setenv("SUI_PRIVATE_KEY", KEY)
    monkeypatch.setenv("K3SDAAS_PACKAGE_ID", PACKAGE)
    out = run_module(seal_token.main, {"node_id": "w1"}, capsys)
    # The URL came from SUI_RPC_URL and is refused before any connection is tried.
    assert out["field"] == "rpc_url"
    assert KEY not in json.dumps(out)


def test_private_key_is_no_log():
    spec = sui_utils.sui_argument_spec()
    assert spec["private_key"]["no_log"] is True
    assert spec["private_key"]["fallback"][1] == ["SUI_PRIVATE_KEY"]
    assert spec["key_file"]["fallback"][1] == ["SUI_KEY_FILE"]


def token(**changes):
    now = int(time.time() * 1000)
    fields = dict(token_id=PACKAGE, node_id="w1", owner=PACKAGE, pool_id=PACKAGE, stake_mist=2_000_000_000, tier=2,
                  expires_at_ms=now + 3_600_000, valid=True)
    fields.update(changes)
    return SealToken(**fields)


class Params:
    """Stands in for the module: check_requirements only reads params."""

    def __init__(self, min_valid_for=None):
        self.params = dict(token_id=None, node_id="w1", min_valid_for=min_valid_for)


def test_preflight_accepts_a_token_that_meets_both_limits():
    seal_token.check_requirements(Params(min_valid_for=60), token(), 2)


@pytest.mark.parametrize(
    ("changes", "min_tier", "min_valid_for", "error", "field"),
    [
        (dict(tier=1), 2, None, InsufficientStake, "min_tier"),
        (dict(tier=0, valid=False), None, 1, InsufficientStake, "min_tier"),
        (dict(expires_at_ms=0, valid=False), 1, None, TokenExpired, "min_valid_for"),
        ({}, None, 7200, TokenExpired, "min_valid_for"),
    ],
)
def test_preflight_failures_say_why(changes, min_tier, min_valid_for, error, field):
    with pytest.raises(error) as caught:
        seal_token.check_requirements(Params(min_valid_for=min_valid_for), token(**changes), min_tier)
    assert caught.value.field == field


def test_committed_stake_counts_slashed_stake():
    assert sui_stake.committed(token(stake_mist=1_800_000_000, slashed_total_mist=200_000_000)) == 2_000_000_000
