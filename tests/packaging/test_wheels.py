"""The production wheel never carries the local stand-ins; the localnet wheel carries exactly them.

Both wheels are built the way a user or an execution-environment build makes them (`pip wheel --no-deps`,
with pip's build isolation), from a copy of the sources so the working tree gets no build leftovers.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAND_IN_SCRIPTS = {"k3sdaas-localnet", "nitro-cli-sim"}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")

pytestmark = pytest.mark.slow


def build_wheel(project: Path, output: Path) -> zipfile.ZipFile:
    output.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", str(output), str(project)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = output.glob("*.whl")
    return zipfile.ZipFile(wheel)


def console_scripts(wheel: zipfile.ZipFile) -> dict[str, str]:
    names = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    if not names:
        return {}
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(names[0]).decode())
    return dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    root = tmp_path_factory.mktemp("sources")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=IGNORE)
    shutil.copytree(REPO / "localnet", root / "localnet", ignore=IGNORE)
    out = tmp_path_factory.mktemp("wheels")
    return {"k3sdaas": build_wheel(root, out / "k3sdaas"), "localnet": build_wheel(root / "localnet", out / "localnet")}


def test_production_wheel_has_no_stand_ins(wheels: dict[str, zipfile.ZipFile]) -> None:
    files = wheels["k3sdaas"].namelist()
    assert "k3sdaas/py.typed" in files and "k3sdaas/chain/client.py" in files
    assert [name for name in files if "localnet" in name.lower()] == []
    packages = {name.split("/")[0] for name in files if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"k3sdaas"}
    scripts = console_scripts(wheels["k3sdaas"])
    assert not STAND_IN_SCRIPTS & set(scripts), scripts
    assert not [target for target in scripts.values() if "localnet" in target], scripts
    assert scripts["k3sdaas-attest"] == "k3sdaas.attestation.cli:main"


def test_localnet_wheel_has_the_stand_ins_and_nothing_of_the_runtime(wheels: dict[str, zipfile.ZipFile]) -> None:
    files = wheels["localnet"].namelist()
    packages = {name.split("/")[0] for name in files if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"k3sdaas_localnet"}
    for module in ("k3sdaas_localnet/__main__.py", "k3sdaas_localnet/nitro/cli.py", "k3sdaas_localnet/sui/server.py"):
        assert module in files
    scripts = console_scripts(wheels["localnet"])
    assert scripts == {
        "k3sdaas-localnet": "k3sdaas_localnet.__main__:main",
        "nitro-cli-sim": "k3sdaas_localnet.nitro.cli:run",
    }
    (metadata,) = [name for name in files if name.endswith(".dist-info/METADATA")]
    assert "Requires-Dist: k3sdaas" in wheels["localnet"].read(metadata).decode()


def test_execution_environment_requirements_name_no_stand_in() -> None:
    requirements = REPO / "collections" / "ansible_collections" / "k3sdaas" / "core" / "meta" / "ee-requirements.txt"
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    assert "k3sdaas>=0.1.0" in lines
    assert not [line for line in lines if "localnet" in line or "nitro-cli-sim" in line]
