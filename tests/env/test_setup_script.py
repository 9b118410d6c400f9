"""scripts/setup.sh: shell syntax, its hashing/stamp helpers, and that a re-run does no work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools

SHELL_SCRIPTS = ["scripts/setup.sh", "scripts/lib/common.sh", "images/base/build.sh"]
# Progress lines of a step that did something; a converged machine prints none of them.
WORK_WORDS = ("installing", "building", "starting", "creating", "tagging", "apt-get update", "importing", "linked")


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_parses(env_tools: EnvTools, script: str) -> None:
    env_tools.run(["bash", "-n", script])


def test_content_hash_tracks_bytes_and_names_but_not_location(env_tools: EnvTools, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "packages.txt").write_text("systemd\n")
    (tmp_path / "renamed.txt").write_text("systemd\n")
    (tmp_path / "edited.txt").write_text("systemd\npython3\n")

    def digest(path: str) -> str:
        return env_tools.bash_lib(f"content_hash {tmp_path / path}").strip()

    assert digest("a/packages.txt") == digest("b/packages.txt")
    assert len(digest("a/packages.txt")) == 12
    assert digest("renamed.txt") != digest("a/packages.txt")
    (tmp_path / "b" / "packages.txt").write_text("systemd\npython3\n")
    assert digest("b/packages.txt") != digest("a/packages.txt")


def test_stamp_matches_only_the_written_value(env_tools: EnvTools, tmp_path: Path) -> None:
    stamp = tmp_path / "nested" / "stamp"
    assert env_tools.bash_lib(f"stamp_matches {stamp} abc && echo yes || echo no").strip() == "no"
    env_tools.bash_lib(f"write_stamp {stamp} abc")
    assert env_tools.bash_lib(f"stamp_matches {stamp} abc && echo yes || echo no").strip() == "yes"
    assert env_tools.bash_lib(f"stamp_matches {stamp} abd && echo yes || echo no").strip() == "no"


def test_pick_kubectl_skips_the_gcloud_dispatcher(env_tools: EnvTools, tmp_path: Path) -> None:
    tools = tmp_path / "tools"  # a PATH with the helpers' own tools only, so the machine's kubectl is not found
    tools.mkdir()
    for tool in ("find", "sort", "tail", "readlink", "dirname"):
        (tools / tool).symlink_to(shutil.which(tool) or tool)
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    for name in ("kubectl", "kubectl.1.9", "kubectl.1.10", "kubectl.1.33"):
        (sdk / name).write_text("#!/bin/sh\n")
    on_path = tmp_path / "bin"
    on_path.mkdir()

    def pick() -> str:
        return env_tools.bash_lib(f"PATH={on_path}:{tools} pick_kubectl /fallback/kubectl").strip()

    (on_path / "kubectl").write_text("#!/bin/sh\n")  # a plain kubectl, nothing beside it
    (on_path / "kubectl").chmod(0o755)
    assert pick() == str(on_path / "kubectl")
    (on_path / "kubectl").unlink()
    assert pick() == "/fallback/kubectl"
    (sdk / "kubectl").chmod(0o755)
    (on_path / "kubectl").symlink_to(sdk / "kubectl")  # gcloud's layout: the dispatcher linked onto PATH
    assert pick() == str(sdk / "kubectl.1.33")


@pytest.mark.docker
@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/setup.sh installs Debian packages and needs root")
def test_second_setup_run_reports_no_work(env_tools: EnvTools, docker_engine: None) -> None:
    env_tools.run(["scripts/setup.sh"])  # converges whatever changed since the last setup
    again = env_tools.run(["scripts/setup.sh"])
    progress = [line for line in again.stdout.splitlines() if line.startswith("==> ")]
    assert [line for line in progress if any(word in line for word in WORK_WORDS)] == []
    for step in ("Debian packages up to date", "python venv up to date", "base image up to date",
                 "kubectl for the local default up to date"):
        assert any(step in line for line in progress), f"missing '{step}' in:\n{again.stdout}"
