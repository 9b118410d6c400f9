"""k3sdaas-kubectl-auth against a real master: ExecCredential versions, the 0600 cache, re-login after a 401."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from nautilus.conftest import Master
from proxy.conftest import Identity

PLUGIN = [sys.executable, "-m", "k3sdaas.kubectl_auth"]


def plugin_args(master: Master, who: Identity) -> list[str]:
    config = yaml.safe_load(master.client.get("/kubectl/config", params={"token_id": who.token_id,
                                                                         "key_file": str(who.key_file)}).text)
    return list(config["users"][0]["user"]["exec"]["args"])


def run(args: list[str], home: Path, exec_info: dict[str, Any] | None = None, via_shell: bool = True,
        ) -> subprocess.CompletedProcess[str]:
    """The plugin as kubectl runs it; ``via_shell`` gives each run its own parent, as separate kubectl runs do."""
    env = {**os.environ, "XDG_CACHE_HOME": str(home)}
    env.pop("KUBERNETES_EXEC_INFO", None)
    if exec_info is not None:
        env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
    command = ["sh", "-c", '"$@"; exit $?', "sh", *PLUGIN, *args] if via_shell else [*PLUGIN, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def exec_info(version: str) -> dict[str, Any]:
    return {"kind": "ExecCredential", "apiVersion": f"client.authentication.k8s.io/{version}",
            "spec": {"interactive": False}}


@pytest.fixture
def viewer_args(proxied_master: Master, identities: dict[str, Identity]) -> list[str]:
    return plugin_args(proxied_master, identities["viewer"])


def test_answers_in_the_version_kubectl_asks_and_caches_0600(proxied_master: Master, viewer_args: list[str],
                                                              identities: dict[str, Identity], tmp_path: Path) -> None:
    first = run(viewer_args, tmp_path, exec_info("v1"))
    assert first.returncode == 0, first.stderr
    credential = json.loads(first.stdout)
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1" and credential["kind"] == "ExecCredential"
    token = credential["status"]["token"]
    assert credential["status"]["expirationTimestamp"].endswith("Z")
    context = proxied_master.get("/api/v1/security-context", token).json()
    assert context["address"] == identities["viewer"].signer.address
    assert identities["viewer"].signer.keystring not in first.stdout + first.stderr

    [cached] = (tmp_path / "k3sdaas" / "sessions").iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    # another kubectl process: the cached session, in the other version
    second = run(viewer_args, tmp_path, exec_info("v1beta1"))
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {**credential, "apiVersion": "client.authentication.k8s.io/v1beta1"}
    # run by hand: v1
    assert json.loads(run(viewer_args, tmp_path).stdout)["status"]["token"] == token


def test_same_kubectl_asking_again_gets_a_fresh_session(viewer_args: list[str], tmp_path: Path) -> None:
    """kubectl re-runs the plugin in the same process only after a 401: the cached session must not come back."""
    first = json.loads(run(viewer_args, tmp_path, via_shell=False).stdout)["status"]["token"]
    again = run(viewer_args, tmp_path, via_shell=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"]["token"] != first
    refreshed = run([*viewer_args, "--refresh"], tmp_path)
    assert json.loads(refreshed.stdout)["status"]["token"] not in (first, json.loads(again.stdout)["status"]["token"])


def test_a_tampered_cache_is_ignored(viewer_args: list[str], tmp_path: Path) -> None:
    assert run(viewer_args, tmp_path).returncode == 0
    [cached] = (tmp_path / "k3sdaas" / "sessions").iterdir()
    cached.write_text("{not json")
    done = run(viewer_args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(cached.read_text())["session"] == json.loads(done.stdout)["status"]["token"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a[:a.index("--token-id")], "the following arguments are required: --token-id"),
    (lambda a: [*a, "--bogus"], "unrecognized arguments: --bogus"),
    (lambda a: [x if x != a[a.index("--token-id") + 1] else "0x12" for x in a], "--token-id must be"),
    (lambda a: [x if x != a[a.index("--ca-data") + 1] else "@@@" for x in a], "--ca-data must be a base64 PEM"),
    (lambda a: [x if x != a[a.index("--key-file") + 1] else "/nonexistent/key" for x in a],
     "--key-file '/nonexistent/key' does not exist"),
    (lambda a: [x if x != a[a.index("--server") + 1] else "http://plain" for x in a], "--server must be"),
    (lambda a: [x if x != a[a.index("--token-id") + 1] else "0x" + "ab" * 32 for x in a], "the login refused"),
])
def test_errors_exit_1_with_one_line(viewer_args: list[str], tmp_path: Path, change: Any, message: str) -> None:
    done = run(change(viewer_args), tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("k3sdaas-kubectl-auth: "), done.stderr
    assert message in done.stderr, done.stderr


def test_refuses_an_exec_info_version_it_does_not_speak(viewer_args: list[str], tmp_path: Path) -> None:
    done = run(viewer_args, tmp_path, exec_info("v1alpha1"))
    assert done.returncode == 1 and "v1alpha1" in done.stderr


def test_key_readable_by_others_is_refused(proxied_master: Master, identities: dict[str, Identity],
                                           tmp_path: Path) -> None:
    loose = tmp_path / "loose.key"
    loose.write_text(identities["viewer"].signer.keystring)
    loose.chmod(0o644)
    args = plugin_args(proxied_master, identities["viewer"])
    args[args.index("--key-file") + 1] = str(loose)
    done = run(args, tmp_path)
    assert done.returncode == 1 and "chmod 600" in done.stderr


def test_cache_is_per_master_certificate(proxied_master: Master, viewer_args: list[str], tmp_path: Path) -> None:
    """A restarted master has a new certificate (and kubeconfig): its sessions never meet the old cache."""
    first = json.loads(run(viewer_args, tmp_path).stdout)["status"]["token"]
    args = list(viewer_args)
    index = args.index("--ca-data")
    args[index:index + 2] = ["--ca-file", str(proxied_master.cert)]
    done = run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["token"] != first
    assert len(list((tmp_path / "k3sdaas" / "sessions").iterdir())) == 2


def test_url_reaches_the_master_elsewhere_while_the_proof_names_its_audience(viewer_args: list[str],
                                                                              tmp_path: Path) -> None:
    """A port forward or the local default's published port: --url is where to connect, --server the audience."""
    server = viewer_args[viewer_args.index("--server") + 1]
    assert "127.0.0.1" in server
    elsewhere = server.replace("127.0.0.1", "localhost")  # the same master under another name its certificate has
    done = run([*viewer_args, "--url", elsewhere], tmp_path)
    assert done.returncode == 0, done.stderr
    # signing for the address it connects to instead is refused: the audience binds the proof to the master's name
    wrong = [elsewhere if arg == server else arg for arg in viewer_args]
    refused = run(wrong, tmp_path / "other")
    assert refused.returncode == 1 and "audience" in refused.stderr, refused.stderr
    bad = run([*viewer_args, "--url", "http://plain"], tmp_path)
    assert bad.returncode == 1 and "--url must be" in bad.stderr
