"""Build the master enclave image and its EIF reproducibly, and write (or check) enclave.lock.json.

    .venv/bin/python enclave/build.py                 # build, write the lock
    .venv/bin/python enclave/build.py --check         # build, exit 1 unless the PCRs equal the lock's
    .venv/bin/python enclave/build.py --nitro-cli nitro-cli   # on a real parent: real PCRs
    .venv/bin/python enclave/build.py --image-only --if-changed  # the image alone, unless it is up to date

Pinned inputs: the local base image (its ID is recorded), the runtime's source (without its local
stand-ins), every Python dependency at the version constraints.txt pins, the build tools in
build-constraints.txt, this directory's Dockerfile, entrypoint and vsock config, and an optional
k3s binary in enclave/k3s/. ``docker build`` runs with no network, so nothing else can get in.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOCK = HERE / "enclave.lock.json"
CONTEXT_FILES = ("Dockerfile", "entrypoint.py", "vsock.json")
K3S_BINARY = HERE / "k3s" / "k3s"
# Zip files cannot hold dates before 1980; wheels built with this epoch carry fixed timestamps.
SOURCE_DATE_EPOCH = "315532800"
STAGED_README = "K3s-DaaS runtime, staged for the master enclave image.\n"
SIMULATOR = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]
PCR_NAMES = ("PCR0", "PCR1", "PCR2", "PCR8")
# Files that record when and where debootstrap ran rather than what it installed (logs, regenerable caches).
VOLATILE_PREFIXES = ("var/log/", "var/cache/", "tmp/", "run/")
SHADOW_FILES = {"etc/shadow", "etc/shadow-"}


class BuildError(Exception):
    """A step failed; the message says which and why."""


def run(command: list[str], **kwargs: Any) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise BuildError(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr.strip()[-4000:]}")
    return done.stdout


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pinned(requirement: str) -> str:
    """The ``name==version`` line for ``requirement`` in build-constraints.txt."""
    for line in (HERE / "build-constraints.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == requirement:
            return line.strip()
    raise BuildError(f"build-constraints.txt does not pin {requirement}")


# Tables of pyproject.toml that do not reach the runtime's wheel as the enclave installs it: it runs no console
# scripts and installs no extras, and the tools' settings ([tool.ruff], [tool.pytest...]) change often.
UNSTAGED_TABLES = re.compile(
    r"(?ms)^\[\[?(?:project\.scripts|project\.optional-dependencies|tool\.(?!setuptools\b)[^\]]*)\]\]?\n.*?(?=^\[|\Z)"
)


def staged_pyproject(pyproject: str) -> str:
    """The project metadata the enclave's wheel is built from: only what decides its content."""
    return UNSTAGED_TABLES.sub("", pyproject)


def stage_source(stage: Path) -> str:
    """Copy the runtime (the stand-ins are another distribution, localnet/) into ``stage``; return its digest.

    Files go in sorted order with fixed modes and the README is replaced, so only the code reaches the measurement.
    """
    digest = hashlib.sha256()
    source = REPO / "src" / "k3sdaas"
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        target = stage / "src" / "k3sdaas" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        target.chmod(0o644)
        digest.update(f"{relative}\0{sha256_file(path)}\n".encode())
    (stage / "pyproject.toml").write_text(staged_pyproject((REPO / "pyproject.toml").read_text()))
    (stage / "README.md").write_text(STAGED_README)
    digest.update((stage / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def build_wheels(stage: Path, wheels: Path) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels)]
    run([*pip, "--constraint", str(REPO / "constraints.txt"),
         "--build-constraint", str(HERE / "build-constraints.txt"), str(stage)], env=env)
    run([*pip, "--no-deps", pinned("pip")], env=env)


def repository_inputs(stage: Path) -> dict[str, Any]:
    """Stage the runtime; return the inputs taken from this repository, which are the same on every machine."""
    return {
        "source_sha256": stage_source(stage),
        "context": {name: sha256_file(HERE / name) for name in CONTEXT_FILES},
        "k3s_sha256": sha256_file(K3S_BINARY) if K3S_BINARY.is_file() else None,
    }


def prepare_context(context: Path) -> dict[str, Any]:
    """Fill the docker build context; return the inputs that decide the image's content."""
    stage = context.parent / "stage"
    inputs = repository_inputs(stage)
    build_wheels(stage, context / "wheels")
    for name in CONTEXT_FILES:
        shutil.copyfile(HERE / name, context / name)
        (context / name).chmod(0o644)
    (context / "k3s").mkdir()
    if K3S_BINARY.is_file():
        shutil.copyfile(K3S_BINARY, context / "k3s" / "k3s")
        (context / "k3s" / "k3s").chmod(0o755)
    inputs["wheels"] = {path.name: sha256_file(path) for path in sorted((context / "wheels").glob("*.whl"))
                        if not path.name.startswith("k3sdaas-")}  # the runtime's own wheel: see source_sha256
    return inputs


def fixed_shadow(text: str) -> str:
    """/etc/shadow with each account's last password change (days since 1970) set to SOURCE_DATE_EPOCH's day."""
    day = str(int(SOURCE_DATE_EPOCH) // 86400)
    lines = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            fields[2] = day
        lines.append(":".join(fields))
    return "".join(f"{line}\n" for line in lines)


def normalize_rootfs(exported: Path, normalized: Path) -> None:
    """Rewrite a `docker export` tar so equal packages give equal bytes: names sorted, one fixed time, numeric
    owners only, hard links as copies (sorting may put a link before its target), volatile files dropped."""
    with tarfile.open(exported) as source, tarfile.open(normalized, "w", format=tarfile.PAX_FORMAT) as target:
        for member in sorted(source.getmembers(), key=lambda m: m.name):
            name = member.name.removeprefix("./")
            if not member.isdir() and name.startswith(VOLATILE_PREFIXES):
                continue
            data = source.extractfile(member) if member.isfile() or member.islnk() else None
            if member.islnk():
                member.type, member.size, member.linkname = tarfile.REGTYPE, source.getmember(member.linkname).size, ""
                member.pax_headers.pop("linkpath", None)
            if name in SHADOW_FILES and data is not None:
                content = fixed_shadow(data.read().decode()).encode()
                data, member.size = io.BytesIO(content), len(content)
            member.mtime, member.uname, member.gname = int(SOURCE_DATE_EPOCH), "", ""
            member.pax_headers = {key: value for key, value in member.pax_headers.items()
                                  if key not in ("mtime", "atime", "ctime", "uname", "gname")}
            target.addfile(member, data)


def normalized_base(reference: str, work: Path) -> tuple[str, str]:
    """The base image's filesystem made reproducible (normalize_rootfs) and imported with the base's settings.

    Returns the normalized image's tag and the digest of its filesystem: equal on every machine whose Debian
    mirror served the same packages, which is as reproducible as a base built from a live mirror can be.
    """
    exported, normalized = work / "base-export.tar", work / "base-rootfs.tar"
    container = run(["docker", "create", reference]).strip()
    try:
        with exported.open("wb") as out:
            done = subprocess.run(["docker", "export", container], stdout=out, stderr=subprocess.PIPE, check=False)
        if done.returncode != 0:
            raise BuildError(f"docker export of {reference} failed: {done.stderr.decode().strip()[-2000:]}")
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True, check=False)
    normalize_rootfs(exported, normalized)
    exported.unlink()
    digest = sha256_file(normalized)
    tag = f"k3sdaas-enclave-base:{digest[:16]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode != 0:
        config = json.loads(run(["docker", "image", "inspect", "--format", "{{json .Config}}", reference]))
        # Env reaches the EIF's env file; the base's STOPSIGNAL cannot be imported and means nothing in an enclave.
        changes = [f"ENV {item}" for item in config.get("Env") or []]
        if config.get("Cmd"):
            changes.append(f"CMD {json.dumps(config['Cmd'])}")
        run(["docker", "import", *[arg for change in changes for arg in ("--change", change)], str(normalized), tag])
    normalized.unlink()
    return tag, digest


def image_id(reference: str) -> str:
    try:
        return run(["docker", "image", "inspect", "--format", "{{.Id}}", reference]).strip()
    except BuildError as exc:
        raise BuildError(f"image {reference} is not available locally (run scripts/setup.sh): {exc}") from exc


def pip_wheel_name(wheels: Path) -> str:
    found = sorted(wheels.glob("pip-*.whl"))
    if len(found) != 1:
        raise BuildError(f"expected exactly one pip wheel in {wheels}, found {[p.name for p in found]}")
    return found[0].name


INPUTS_LABEL = "org.k3sdaas.inputs-sha256"


def current_inputs(base_id: str) -> str:
    """What decides the image, without building anything: the repository's inputs, the pins and the base."""
    with tempfile.TemporaryDirectory(prefix="k3sdaas-enclave-") as work:
        inputs = repository_inputs(Path(work) / "stage")
    inputs.update(base_image_id=base_id, constraints_sha256=sha256_file(REPO / "constraints.txt"),
                  build_constraints_sha256=sha256_file(HERE / "build-constraints.txt"))
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def image_label(reference: str) -> str | None:
    """The inputs label of the image tagged ``reference``; None when there is no such image or label."""
    try:
        labels = json.loads(run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", reference]))
    except BuildError:
        return None
    return (labels or {}).get(INPUTS_LABEL)


def build(args: argparse.Namespace) -> dict[str, Any]:
    base_id = image_id(args.base_image)
    label = current_inputs(base_id)
    if args.if_changed and image_label(args.tag) == label:
        return {"changed": False, "image": args.tag, "image_id": image_id(args.tag)}
    with tempfile.TemporaryDirectory(prefix="k3sdaas-enclave-") as work:
        context = Path(work) / "context"
        context.mkdir()
        inputs = prepare_context(context)
        inputs["base_image_id"] = base_id
        base_tag, inputs["base_rootfs_sha256"] = normalized_base(args.base_image, Path(work))
        command = ["docker", "build", "--network", "none", "--tag", args.tag,
                   "--build-arg", f"SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
                   "--build-arg", f"BASE_IMAGE={base_tag}",
                   "--build-arg", f"PIP_WHEEL={pip_wheel_name(context / 'wheels')}",
                   "--label", f"{INPUTS_LABEL}={label}", str(context)]
        if args.no_cache:
            command.insert(2, "--no-cache")
        run(command, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    if args.image_only:
        return {"changed": True, "image": args.tag, "image_id": image_id(args.tag)}
    args.eif.parent.mkdir(parents=True, exist_ok=True)
    nitro_cli = shlex.split(args.nitro_cli) if args.nitro_cli else SIMULATOR
    output = json.loads(run([*nitro_cli, "build-enclave", "--docker-uri", args.tag,
                             "--output-file", str(args.eif)]))
    version = run([*nitro_cli, "--version"]).strip()
    measurements = {name: value for name, value in output["Measurements"].items() if name in PCR_NAMES}
    return {
        "format": 1,
        "inputs": inputs,
        "inputs_sha256": hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest(),
        "base_image": args.base_image,
        "built_with": "simulator" if not args.nitro_cli else "nitro-cli",
        "nitro_cli_version": version,
        "measurements": measurements,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", default="k3sdaas-base:latest")
    parser.add_argument("--tag", default="k3sdaas-enclave:latest")
    parser.add_argument("--eif", type=Path, default=HERE / "out" / "k3sdaas-master.eif")
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument("--nitro-cli", help="the nitro-cli command; default: the k3sdaas simulator")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer (proves determinism)")
    parser.add_argument("--check", action="store_true", help="compare with the lock instead of writing it")
    parser.add_argument("--image-only", action="store_true", help="build the image, not the EIF; leave the lock")
    parser.add_argument("--if-changed", action="store_true",
                        help="with --image-only: do nothing when the image carries the current inputs' label")
    args = parser.parse_args(argv)
    if args.if_changed and not args.image_only:
        parser.error("--if-changed needs --image-only")
    try:
        built = build(args)
    except BuildError as exc:
        print(f"enclave build failed: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(built, indent=2))
    if args.image_only:
        return 0
    if not args.check:
        args.lock.write_text(json.dumps(built, indent=2, sort_keys=True) + "\n")
        return 0
    locked = json.loads(args.lock.read_text())
    if locked["measurements"] == built["measurements"]:
        print(f"PCRs equal {args.lock}", file=sys.stderr)
        return 0
    same_inputs = locked["inputs_sha256"] == built["inputs_sha256"]
    print(f"PCRs differ from {args.lock} ({'same' if same_inputs else 'different'} inputs)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
