"""How a package is "published" on the stand-in, which has no Move compiler or bytecode verifier.

A Publish command carries one entry per module. Instead of Move bytecode each entry is a marker::

    b"k3sdaas-standin-module/1\\n" + json({"package": "k3s_daas", "module": "staking",
                                          "source_sha256": "<sha256 hex of move/sources/staking.move>"})

(UTF-8, compact JSON, keys as shown). The node checks that the markers name one known package and
exactly its modules, then does what Sui's publish does: creates an immutable package object at a
fresh id, runs every module's ``init`` (k3s_daas: AdminCap to the sender, StakePool and
EnclaveRegistry shared) and returns an ``0x2::package::UpgradeCap`` that the PTB must transfer.
The markers come back as the modules' ``contents`` (``GetObject`` of the package, ``GetPackage``), so a
client can tell which sources were "deployed". Build the list with :func:`module_markers`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MARKER_PREFIX = b"k3sdaas-standin-module/1\n"


class PublishError(ValueError):
    """The Publish command's modules are not stand-in markers of one known package."""


@dataclass(frozen=True)
class ModuleMarker:
    package: str
    module: str
    source_sha256: str


def marker(package: str, module: str, source_sha256: str) -> bytes:
    """One module's marker bytes."""
    body = {"package": package, "module": module, "source_sha256": source_sha256}
    return MARKER_PREFIX + json.dumps(body, separators=(",", ":")).encode()


def module_markers(package: str, sources_dir: Path, modules: list[str]) -> list[bytes]:
    """Marker bytes for ``modules`` of ``package``, hashing ``sources_dir/<module>.move``."""
    return [
        marker(package, module, hashlib.sha256((sources_dir / f"{module}.move").read_bytes()).hexdigest())
        for module in modules
    ]


def parse_markers(modules: list[bytes]) -> list[ModuleMarker]:
    """Decode and check the markers; all must name the same package."""
    if not modules:
        raise PublishError("Publish carries no modules")
    markers = []
    for index, raw in enumerate(modules):
        if not raw.startswith(MARKER_PREFIX):
            raise PublishError(
                f"module {index} is not a stand-in marker (Move bytecode cannot be executed by the local node)"
            )
        try:
            body = json.loads(raw[len(MARKER_PREFIX):])
            markers.append(ModuleMarker(body["package"], body["module"], body["source_sha256"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PublishError(f"module {index} has a malformed marker: {exc}") from None
    if len({m.package for m in markers}) != 1:
        raise PublishError("Publish mixes modules of several packages")
    return markers
