"""enclave/enclave.lock.json against this repository, without Docker: what comes from the repository is the
same on every machine, so a lock that disagrees with it is stale, not "built elsewhere"."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "enclave" / "enclave.lock.json"
REGENERATE = "run `.venv/bin/python enclave/build.py` and commit enclave/enclave.lock.json"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("enclave_build", REPO / "enclave" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_matches_the_repository(build: ModuleType, tmp_path: Path) -> None:
    locked = json.loads(LOCK.read_text())["inputs"]
    current = build.repository_inputs(tmp_path / "stage")
    stale = sorted(key for key, value in current.items() if locked.get(key) != value)
    assert not stale, f"enclave/enclave.lock.json is stale ({', '.join(stale)} changed): {REGENERATE}"


def test_staged_source_has_no_caches_and_fixed_modes(build: ModuleType, tmp_path: Path) -> None:
    build.repository_inputs(tmp_path / "stage")
    staged = sorted(p.relative_to(tmp_path / "stage" / "src") for p in (tmp_path / "stage" / "src").rglob("*")
                    if p.is_file())
    expected = sorted(p.relative_to(REPO / "src") for p in (REPO / "src" / "k3sdaas").rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert staged == expected
    assert {(tmp_path / "stage" / "src" / p).stat().st_mode & 0o777 for p in staged} == {0o644}


def test_source_digest_ignores_tool_settings_and_extras_but_not_dependencies(build: ModuleType) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    staged = build.staged_pyproject(pyproject)
    assert "[tool.setuptools.packages.find]" in staged and "dependencies = [" in staged
    assert "[project.optional-dependencies]" not in staged and "[tool.pytest" not in staged
    edited = pyproject.replace("[tool.ruff]\n", "[tool.ruff]\nfix = true\n") + '[[tool.mypy.overrides]]\nmodule = "x"\n'
    assert build.staged_pyproject(edited) == staged
    assert build.staged_pyproject(pyproject.replace('"pysui==1.5.1"', '"pysui==1.5.2"')) != staged


def export_tar(path: Path, *, order: list[str], mtime: int, owner: str) -> Path:
    """A small `docker export`-like tar: a file, its hard link, a log, /etc/shadow, in the given order."""
    shadow = f"root:*:{mtime // 86400}:0:99999:7:::\nnobody:*:{mtime // 86400}:0:99999:7:::\n".encode()
    entries = {
        "etc": (tarfile.DIRTYPE, b""), "etc/shadow": (tarfile.REGTYPE, shadow),
        "usr": (tarfile.DIRTYPE, b""), "usr/bin": (tarfile.DIRTYPE, b""),
        "usr/bin/perl": (tarfile.REGTYPE, b"#!perl\n"), "usr/bin/perl5": (tarfile.LNKTYPE, b""),
        "var": (tarfile.DIRTYPE, b""), "var/log": (tarfile.DIRTYPE, b""),
        "var/log/dpkg.log": (tarfile.REGTYPE, f"installed at {mtime}\n".encode()),
    }
    with tarfile.open(path, "w") as tar:
        for name in order:
            kind, data = entries[name]
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.uname, info.gname, info.size = kind, mtime, owner, owner, len(data)
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind == tarfile.LNKTYPE:
                info.linkname, info.size = "usr/bin/perl", 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


def test_base_rootfs_is_normalized_to_the_same_bytes(build: ModuleType, tmp_path: Path) -> None:
    names = ["etc", "etc/shadow", "usr", "usr/bin", "usr/bin/perl", "usr/bin/perl5", "var", "var/log",
             "var/log/dpkg.log"]
    # the link's target first, as tar requires; otherwise another order, other times and owner names
    shuffled = ["var", "var/log", "var/log/dpkg.log", "usr", "usr/bin", "usr/bin/perl", "usr/bin/perl5", "etc",
                "etc/shadow"]
    outputs = []
    for index, (order, mtime, owner) in enumerate([(names, 1_700_000_000, "root"), (shuffled, 1_800_000_000, "")]):
        normalized = tmp_path / f"normalized-{index}.tar"
        build.normalize_rootfs(export_tar(tmp_path / f"export-{index}.tar", order=order, mtime=mtime, owner=owner),
                               normalized)
        outputs.append(normalized.read_bytes())
    assert outputs[0] == outputs[1]

    with tarfile.open(tmp_path / "normalized-0.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert "var/log" in [m.name for m in members] and "var/log/dpkg.log" not in [m.name for m in members]
        assert {m.mtime for m in members} == {int(build.SOURCE_DATE_EPOCH)} and {m.uname for m in members} == {""}
        link = tar.getmember("usr/bin/perl5")
        assert link.isfile() and tar.extractfile(link).read() == b"#!perl\n"
        shadow = tar.extractfile("etc/shadow").read().decode()
        assert shadow == "root:*:3652:0:99999:7:::\nnobody:*:3652:0:99999:7:::\n"
