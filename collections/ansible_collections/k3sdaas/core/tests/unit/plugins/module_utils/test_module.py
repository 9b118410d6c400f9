# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.k3sdaas.core.plugins.module_utils.module import K3sdaasModule
from k3sdaas.errors import InvalidInput, Unavailable


def set_module_args(args):
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    basic._ANSIBLE_PROFILE = "legacy"


def run_failing(module, exc, msg=None):
    with pytest.raises(SystemExit):
        module.fail_from_exception(exc, msg)


@pytest.fixture
def module(capsys):
    set_module_args({"name": "worker-1"})
    return K3sdaasModule(argument_spec={"name": {"type": "str", "required": True}})


def result(capsys):
    return json.loads(capsys.readouterr().out)


def test_runtime_error_names_the_field(module, capsys):
    run_failing(module, InvalidInput("amount must be positive", field="amount"), "cannot stake")
    out = result(capsys)
    assert out["failed"] is True
    assert out["msg"] == "cannot stake: amount must be positive"
    assert out["field"] == "amount"
    assert out["error_type"] == "InvalidInput"
    assert "exception" not in out


def test_runtime_error_without_field(module, capsys):
    run_failing(module, Unavailable("rpc down"))
    out = result(capsys)
    assert out["msg"] == "rpc down"
    assert "field" not in out


def test_unexpected_error_is_reported_as_unexpected(module, capsys):
    try:
        raise KeyError("pool")
    except KeyError as exc:
        run_failing(module, exc)
    out = result(capsys)
    assert out["error_type"] == "KeyError"
    assert out["msg"] == "Unexpected error: 'pool'"


def test_check_mode_is_supported_by_default(capsys):
    set_module_args({"name": "worker-1", "_ansible_check_mode": True})
    module = K3sdaasModule(argument_spec={"name": {"type": "str", "required": True}})
    assert module.check_mode is True
    assert module.params["name"] == "worker-1"


def test_missing_option_fails_before_any_work(capsys):
    set_module_args({})
    with pytest.raises(SystemExit):
        K3sdaasModule(argument_spec={"name": {"type": "str", "required": True}})
    assert "name" in result(capsys)["msg"]
