"""The execution environment: `ansible-builder create` writes the build context from execution-environment.yml,
and what the image would install is checked here without building it (no base image can be pulled here):
the runtime wheel and collection tarball are in the context, every Python requirement the build merges
(ours and the collections') is pinned by constraints.txt and resolves, offline, against it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import ansible_collections.amazon.aws
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.playbook import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.slow
EE = yaml.safe_load((REPO / "execution-environment.yml").read_text())
VERSION = yaml.safe_load((REPO / "collections/ansible_collections/k3sdaas/core/galaxy.yml").read_text())["version"]
# the collections the `ansible` package bundles, as the galaxy stage would install them from Galaxy
BUNDLED = Path(ansible_collections.amazon.aws.__path__[0]).parents[1]


def run(*command: str | Path, cwd: Path = REPO) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=ansible_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
    return done.stdout


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build context, from a copy of the files the definition names (so the tree gets no build/)."""
    src = tmp_path_factory.mktemp("ee")
    shutil.copy(REPO / "execution-environment.yml", src)
    shutil.copy(REPO / "constraints.txt", src)
    shutil.copytree(REPO / "awx" / "ee", src / "awx" / "ee")
    run("bash", REPO / "awx/ee/prepare.sh", src / "build/ee/dist")
    run(VENV_BIN / "ansible-builder", "create", "-f", src / "execution-environment.yml", "-c", src / "context",
        "--output-filename", "Containerfile")
    return src / "context"


def test_containerfile_takes_the_base_image_as_a_build_arg(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{EE["images"]["base_image"]["name"]}"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    pins = constraints()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.MULTILINE)
    assert refs, containerfile
    assert sorted(refs.group(1).split()) == [f"ansible-core=={pins['ansible-core']}",
                                             f"ansible-runner=={pins['ansible-runner']}"]
    # the constraints reach assemble (builder stage) before it installs anything
    builder = containerfile.split("AS builder", 1)[1]
    constraints_copy = builder.index("COPY _build/configs/constraints.txt /tmp/src/upper-constraints.txt")
    assert constraints_copy < builder.index("/output/scripts/assemble")
    assert (context / "_build/configs/constraints.txt").read_text() == (REPO / "constraints.txt").read_text()
    base = containerfile.split("AS base", 1)[1].split("AS galaxy", 1)[0]
    assert "COPY _build/dist/ /opt/k3sdaas/dist/" in base


def test_context_carries_the_runtime_wheel_and_the_collection(context: Path) -> None:
    dist = context / "_build/dist"
    wheel = dist / f"k3sdaas-{VERSION}-py3-none-any.whl"
    assert "k3sdaas/chain/client.py" in zipfile.ZipFile(wheel).namelist()
    with tarfile.open(dist / f"k3sdaas-core-{VERSION}.tar.gz") as tarball:
        manifest = json.load(tarball.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["version"]) == ("k3sdaas", VERSION)
    requirements = (context / "_build/requirements.txt").read_text()
    assert f"k3sdaas @ file:///opt/k3sdaas/dist/{wheel.name}" in requirements
    # the galaxy stage runs in /build with the context's _build/ copied there
    collections = yaml.safe_load((context / "_build/requirements.yml").read_text())["collections"]
    files = [c["name"] for c in collections if c.get("type") == "file"]
    assert files == [f"dist/k3sdaas-core-{VERSION}.tar.gz"] and (context / "_build" / files[0]).is_file()
    wanted = {c["name"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert wanted <= {c["name"] for c in collections}
    bindep = (context / "_build/bindep.txt").read_text()
    assert "kubernetes-client [platform:rpm]" in bindep and "socat [platform:rpm]" in bindep


@pytest.fixture(scope="module")
def merged_requirements(context: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What the builder stage's introspect merges: the collections as the galaxy stage installs them
    (ours from the tarball, the others as the bundled ansible package has them) plus awx/ee/requirements.txt."""
    root = tmp_path_factory.mktemp("collections")
    run(VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", root,
        context / f"_build/dist/k3sdaas-core-{VERSION}.tar.gz")
    galaxy = yaml.safe_load((REPO / "collections/ansible_collections/k3sdaas/core/galaxy.yml").read_text())
    for name in [*galaxy["dependencies"], "ansible.posix", "community.general"]:
        namespace, collection = name.split(".")
        (root / "ansible_collections" / namespace).mkdir(exist_ok=True)
        (root / "ansible_collections" / namespace / collection).symlink_to(BUNDLED / namespace / collection)
    # the introspect step exactly as the Containerfile runs it (its script, its arguments), on these collections
    step = re.search(r"^RUN \$PYCMD /output/scripts/introspect.py (introspect .*)$",
                     (context / "Containerfile").read_text(), re.MULTILINE)
    assert step, "the Containerfile has no introspect step"
    arguments = [arg for arg in step.group(1).split() if not arg.startswith("--write-")]
    out = run(sys.executable, context / "_build/scripts/introspect.py", *arguments, "--sanitize", root,
              cwd=context / "_build")
    data: dict[str, Any] = yaml.safe_load(out.split("\n", 1)[1])
    return [line.split("  #")[0] for line in data["python"]]


def test_every_python_requirement_is_pinned_by_constraints(merged_requirements: list[str]) -> None:
    pins = constraints()
    requirements = [Requirement(line) for line in merged_requirements]
    names = {canonicalize_name(r.name) for r in requirements}
    assert {"k3sdaas", "pysui", "boto3", "cryptography", "kubernetes", "docker"} <= names
    assert "paramiko" not in names
    for requirement in requirements:
        if requirement.url:
            continue  # the runtime wheel, by path
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} (merged into the EE) is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{requirement} excludes {pins[name]}"


def test_requirements_resolve_offline_against_constraints(merged_requirements: list[str], context: Path,
                                                           tmp_path: Path) -> None:
    """pip's resolver, offline: every requirement and dependency at a version constraints.txt allows (the
    venv holds exactly those), the runtime from the context's wheel instead of the image's path."""
    local = [line.replace("file:///opt/k3sdaas/dist/", (context / "_build/dist").as_uri() + "/")
             for line in merged_requirements]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(local) + "\n")
    report = tmp_path / "report.json"
    run(sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--disable-pip-version-check", "--quiet",
        "-c", REPO / "constraints.txt", "-r", requirements, "--report", report)
    installs = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert installs == {"k3sdaas": VERSION}, installs  # everything else is already at its pinned version
