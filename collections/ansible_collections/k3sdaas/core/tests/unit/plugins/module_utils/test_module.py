# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.k3sdaas.core.plugins.module_utils.module import K3sdaasModule, ModuleError, range_error
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
    assert out.get("exception") in (None, "(traceback unavailable)")  # the fail_json call, not the exception


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


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "count must be at least 0 and at most 10, got -1.0"),
        (11, "count must be at least 0 and at most 10, got 11.0"),
        (float("nan"), "count must be a finite number, got nan"),
        (float("inf"), "count must be a finite number, got inf"),
    ],
)
def test_out_of_range_options_fail_before_any_work(value, problem, capsys):
    set_module_args({"count": value})
    with pytest.raises(SystemExit):
        K3sdaasModule(argument_spec={"count": {"type": "float"}}, ranges={"count": (0, 10)}, requires_runtime=False)
    out = result(capsys)
    assert (out["msg"], out["field"]) == (problem, "count")


def test_range_bounds_may_be_open():
    assert range_error("n", 2**70, (0, None)) is None
    assert range_error("n", None, (0, 1)) is None
    assert range_error("n", -5, (None, 0)) is None
    assert range_error("n", 1, (None, 0)) == "n must be at most 0, got 1"


def test_guarded_maps_a_module_error_and_keeps_unexpected_tracebacks(module, capsys):
    with pytest.raises(SystemExit):
        module.guarded(lambda: (item for item in ()).throw(ModuleError("eif_path is a directory", "eif_path")))
    out = result(capsys)
    assert (out["msg"], out["field"], out["error_type"]) == ("eif_path is a directory", "eif_path", "ModuleError")
    with pytest.raises(SystemExit):
        module.guarded(lambda: {}["pool"])
    out = result(capsys)
    assert (out["msg"], out["error_type"]) == ("Unexpected error: 'pool'", "KeyError")
