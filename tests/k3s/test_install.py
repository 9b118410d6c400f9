"""The real-install path of k3s_server / k3s_agent (role k3s_binary) up to and through the checksum step.

No K3s release is reachable here, so the release is a local HTTP server or an airgap directory holding a
fake binary. Each case installs into a temporary bin directory on localhost (k3s_binary_bin_dir), and
checks that a mismatch or an unreachable release fails with one message and leaves that directory empty.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.playbook import PlaybookRun, run_playbook

pytestmark = pytest.mark.slow
VERSION = "v1.31.12+k3s1"
PLAY = """\
- name: Install k3s
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Install the binary
      ansible.builtin.include_role:
        name: k3sdaas.core.k3s_binary
"""
# A stand-in for the release binary: answers --version like K3s.
FAKE_K3S = f"#!/bin/sh\necho 'k3s version {VERSION} (0123abcd)'\necho 'go version go1.22.12'\n".encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install(tmp_path: Path, **variables: Any) -> PlaybookRun:
    playbook = tmp_path / "install.yml"
    playbook.write_text(PLAY)
    return run_playbook(playbook, local=True, timeout=180,
                        extra_vars={"k3s_binary_bin_dir": str(tmp_path / "bin"),
                                    "k3s_binary_images_dir": str(tmp_path / "images"), **variables})


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path / "bin"


def failures(run: PlaybookRun) -> list[str]:
    """The message of every failed task: a refusal must be exactly one."""
    return [result["msg"] for _, result in run.results() if result.get("failed")]


def airgap(tmp_path: Path, files: dict[str, bytes], sums: dict[str, str]) -> Path:
    directory = tmp_path / "airgap"
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    (directory / "sha256sum-amd64.txt").write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    return directory


def test_airgap_binary_with_a_mismatching_checksum_installs_nothing(tmp_path: Path, bin_dir: Path) -> None:
    directory = airgap(tmp_path, {"k3s": b"not k3s"}, {"k3s": sha256(b"the real k3s")})
    run = install(tmp_path, k3s_binary_airgap_dir=str(directory))
    assert run.returncode != 0
    (fatal,) = failures(run)
    assert f"{directory}/k3s: sha256 {sha256(b'not k3s')} does not match {sha256(b'the real k3s')}" in fatal
    assert "nothing was installed" in fatal
    assert list(bin_dir.iterdir()) == []


def test_airgap_images_with_a_mismatching_checksum_install_nothing(tmp_path: Path, bin_dir: Path) -> None:
    images = "k3s-airgap-images-amd64.tar.zst"
    directory = airgap(tmp_path, {"k3s": FAKE_K3S, images: b"tampered"},
                       {"k3s": sha256(FAKE_K3S), images: sha256(b"images")})
    run = install(tmp_path, k3s_binary_airgap_dir=str(directory))
    (fatal,) = failures(run)
    assert f"{directory}/{images}: sha256" in fatal
    assert list(bin_dir.iterdir()) == [] and not (tmp_path / "images").exists()


def test_airgap_without_the_checksum_file_is_refused(tmp_path: Path, bin_dir: Path) -> None:
    directory = airgap(tmp_path, {"k3s": FAKE_K3S}, {})
    (directory / "sha256sum-amd64.txt").unlink()
    run = install(tmp_path, k3s_binary_airgap_dir=str(directory))
    (fatal,) = failures(run)
    assert "must hold the K3s v1.31.12+k3s1 binary (k3s) and sha256sum-amd64.txt" in fatal
    assert list(bin_dir.iterdir()) == []


def test_airgap_install_with_matching_checksums_then_changes_nothing(tmp_path: Path, bin_dir: Path) -> None:
    images = "k3s-airgap-images-amd64.tar"
    directory = airgap(tmp_path, {"k3s": FAKE_K3S, images: b"images"},
                       {"k3s": sha256(FAKE_K3S), images: sha256(b"images")})
    first = install(tmp_path, k3s_binary_airgap_dir=str(directory))
    assert first.returncode == 0, first.output
    assert (bin_dir / "k3s").read_bytes() == FAKE_K3S and (bin_dir / "k3s").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "images" / images).read_bytes() == b"images"
    second = install(tmp_path, k3s_binary_airgap_dir=str(directory))
    assert second.stats["localhost"]["changed"] == 0 and second.returncode == 0, second.output


def test_unreachable_release_without_airgap_fails_with_one_message(tmp_path: Path, bin_dir: Path) -> None:
    run = install(tmp_path, k3s_binary_release_url="http://127.0.0.1:9/releases")
    assert run.returncode != 0
    (fatal,) = failures(run)
    assert f"K3s {VERSION} could not be installed from http://127.0.0.1:9/releases/{VERSION}/k3s" in fatal
    assert "set k3s_airgap_dir" in fatal
    assert list(bin_dir.iterdir()) == []


@pytest.fixture
def release(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local stand-in for https://github.com/k3s-io/k3s/releases/download: <root>/<version>/<asset>."""
    root = tmp_path / "releases"
    (root / VERSION).mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root / VERSION
    server.shutdown()


def test_release_download_with_a_mismatching_checksum_installs_nothing(
        tmp_path: Path, bin_dir: Path, release: tuple[str, Path]) -> None:
    url, assets = release
    (assets / "k3s").write_bytes(b"corrupted in transit")
    (assets / "sha256sum-amd64.txt").write_text(f"{sha256(FAKE_K3S)}  k3s\n")
    run = install(tmp_path, k3s_binary_release_url=url)
    (fatal,) = failures(run)
    assert "did not match" in fatal and "set k3s_airgap_dir" in fatal
    assert list(bin_dir.iterdir()) == []


def test_release_download_is_checked_installed_and_not_fetched_again(
        tmp_path: Path, bin_dir: Path, release: tuple[str, Path]) -> None:
    url, assets = release
    (assets / "k3s").write_bytes(FAKE_K3S)
    (assets / "sha256sum-amd64.txt").write_text(f"{sha256(b'other')}  k3s-arm64\n{sha256(FAKE_K3S)}  k3s\n")
    first = install(tmp_path, k3s_binary_release_url=url)
    assert first.returncode == 0, first.output
    assert (bin_dir / "k3s").read_bytes() == FAKE_K3S
    (assets / "k3s").unlink()  # the installed version answers --version: nothing is downloaded again
    second = install(tmp_path, k3s_binary_release_url=url)
    assert second.stats["localhost"]["changed"] == 0 and second.returncode == 0, second.output


@pytest.mark.parametrize("version", ["1.31.12", "v1.31.12", "latest"])
def test_a_version_that_is_no_release_tag_is_refused(tmp_path: Path, bin_dir: Path, version: str) -> None:
    run = install(tmp_path, k3s_binary_version=version, k3s_binary_release_url="http://127.0.0.1:9")
    (fatal,) = failures(run)
    assert f"k3s_version must be a K3s release tag such as v1.31.12+k3s1 (got '{version}')" in fatal
