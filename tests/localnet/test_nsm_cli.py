"""``k3sdaas-localnet nsm`` as a separate process: documents through the product NSM client, verified
against the pinned DIR/root.pem; the root survives a restart; bad arguments exit 1 and touch nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from k3sdaas.attestation import PcrPolicy, PolicyError, load_root, verify_attestation
from k3sdaas.attestation.nsm import NsmClient, SocketTransport
from k3sdaas.nitro.eif import nitro_cli_sections, read_eif, write_eif
from k3sdaas.nitro.measure import ZERO_PCR, measure_string

INSTANCE = "i-0123456789abcdef0"
PCRS = {"pcr0": "a0" * 48, "pcr1": "b1" * 48, "pcr2": "c2" * 48}
PROG = "k3sdaas-localnet nsm: "


def nsm(*args: str) -> list[str]:
    return [sys.executable, "-m", "k3sdaas_localnet", "nsm", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K3SDAAS_NITRO_SIM_", "K3SDAAS_NSM_"))}
    return {**env, "K3SDAAS_NITRO_SIM_INSTANCE_ID": INSTANCE}


@contextmanager
def running(state: Path, *args: str) -> Iterator[str]:
    """The command serving; yields its ready line and checks SIGTERM stops it cleanly, socket removed."""
    process = subprocess.Popen(nsm("--state", str(state), *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env())
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline().strip()
        assert line.startswith("k3sdaas-localnet nsm serving "), line or process.stderr.read()
        yield line
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, "SIGTERM should stop the NSM cleanly"
    assert process.stdout.read() == ""
    assert not (state / "nsm.sock").exists()


def _eif(path: Path) -> Path:
    write_eif(path, nitro_cli_sections(b"kernel bytes", "console=ttyS0", {"ImageName": "test"}, [b"ramdisk"]))
    return path


def test_eif_measurements_attested_and_verified_against_the_pinned_root(tmp_path: Path) -> None:
    state, eif = tmp_path / "nsm", _eif(tmp_path / "app.eif")
    image = read_eif(eif).measurements
    with running(state, "--eif", str(eif)) as line:
        assert str(state / "nsm.sock") in line and str(state / "root.pem") in line
        client = NsmClient(SocketTransport(str(state / "nsm.sock")))
        assert set(range(16)) <= set(client.describe_nsm().locked_pcrs)
        document = client.attestation(nonce=b"n" * 16, public_key=b"k" * 32, user_data=b"u" * 32)
    verified = verify_attestation(
        document,
        root=load_root(state / "root.pem"),
        policy=PcrPolicy.for_image(image.pcr0, image.pcr1, image.pcr2, pcr4=measure_string(INSTANCE)),
        nonce=b"n" * 16,
        public_key=b"k" * 32,
        user_data=b"u" * 32,
    )
    assert verified.document.pcrs[0] == image.pcr0 != ZERO_PCR
    assert verified.document.module_id.startswith(f"{INSTANCE}-enc")


def test_given_pcrs_then_restart_keeps_the_root(tmp_path: Path) -> None:
    state = tmp_path / "nsm"
    flags = [arg for name, value in PCRS.items() for arg in (f"--{name}", value)]
    with running(state, *flags):
        first = NsmClient(SocketTransport(str(state / "nsm.sock"))).attestation(nonce=b"1")
    root_pem = (state / "root.pem").read_bytes()
    policy = PcrPolicy.for_image(PCRS["pcr0"], PCRS["pcr1"], PCRS["pcr2"])
    verify_attestation(first, root=load_root(state / "root.pem"), policy=policy, nonce=b"1")

    with running(state) as line:  # no image: a debug-mode enclave's zero PCRs
        assert "debug mode" in line
        second = NsmClient(SocketTransport(str(state / "nsm.sock"))).attestation(nonce=b"2")
    assert (state / "root.pem").read_bytes() == root_pem
    root = load_root(state / "root.pem")
    verified = verify_attestation(second, root=root, policy=PcrPolicy(allow_debug=True), nonce=b"2")
    assert all(verified.document.pcrs[index] == ZERO_PCR for index in (0, 1, 2))
    with pytest.raises(PolicyError):
        verify_attestation(second, root=root)


def test_a_second_instance_does_not_take_over_a_serving_socket(tmp_path: Path) -> None:
    state = tmp_path / "nsm"
    with running(state):
        second = subprocess.run(nsm("--state", str(state)), check=False, capture_output=True, text=True, env=_env(),
                                timeout=30)
        assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
        assert "another process is serving" in second.stderr
        NsmClient(SocketTransport(str(state / "nsm.sock"))).get_random()


@pytest.mark.parametrize(("args", "message"), [
    (["--pcr0", "ab" * 47, "--pcr1", PCRS["pcr1"], "--pcr2", PCRS["pcr2"]], "--pcr0 must be 96 hex digits"),
    (["--pcr0", "zz" * 48, "--pcr1", PCRS["pcr1"], "--pcr2", PCRS["pcr2"]], "--pcr0 must be 96 hex digits"),
    (["--pcr0", PCRS["pcr0"]], "--pcr1, --pcr2 missing"),
    (["--eif", "{tmp}/missing.eif"], "cannot read it"),
    (["--eif", "{tmp}/garbage.eif"], "not an enclave image file"),
    (["--eif", "{tmp}/garbage.eif", "--pcr0", PCRS["pcr0"]], "alternatives"),
    (["--port", "1"], "unrecognized arguments"),
])
def test_bad_arguments_exit_1_with_one_line_and_create_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "garbage.eif").write_bytes(b"not an eif at all" * 100)
    state = tmp_path / "nsm"
    argv = ["--state", str(state), *(arg.format(tmp=tmp_path) for arg in args)]
    result = subprocess.run(nsm(*argv), check=False, capture_output=True, text=True, env=_env(), timeout=30)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith(PROG) and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not state.exists()


def test_serve_local_uses_the_simulator_socket_when_there_is_one(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from k3sdaas.nautilus.cli import local_settings

    monkeypatch.delenv("K3SDAAS_NSM_SOCKET", raising=False)
    assert "nsm_socket" not in local_settings(tmp_path)
    with running(tmp_path / "nsm"):
        assert local_settings(tmp_path)["nsm_socket"] == str(tmp_path / "nsm" / "nsm.sock")
        monkeypatch.setenv("K3SDAAS_NSM_SOCKET", "/elsewhere.sock")
        assert "nsm_socket" not in local_settings(tmp_path)
