"""The local environment's operator: a funded key and the package "build" the stand-in publishes.

On a real network the operator brings a key (file or AWX credential) and `sui move build` output.
Locally both are made here, once: the key file is created only when missing (mode 0600) and funded
only then; the build output (stand-in module markers in `sui move build --dump-bytecode-as-base64`
JSON) is rewritten only when the Move sources changed. Each step says whether it did anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import dump_build_output
from k3sdaas.chain.keys import signer_from_file

from .faucet import DEFAULT_AMOUNT, fund_address
from .packages import K3S_DAAS_MODULES
from .publish import module_markers

FRAMEWORK_DEPENDENCIES = ["0x1", "0x2"]


@dataclass(frozen=True)
class OperatorReport:
    address: str
    key_created: bool
    build_written: bool


def ensure_key(key_file: Path) -> bool:
    """Create an ed25519 key (bech32 `suiprivkey…`) at ``key_file`` unless one is there."""
    if key_file.exists():
        return False
    key_file.parent.mkdir(parents=True, exist_ok=True)
    _, private_key = create_new_keypair(scheme=SignatureScheme.ED25519)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(private_key.to_bech32() + "\n")
    return True


def ensure_build_output(build_output: Path, sources: Path) -> bool:
    """Write the stand-in build of ``sources`` to ``build_output`` when it differs."""
    modules = [module.name for module in K3S_DAAS_MODULES]
    text = dump_build_output(module_markers("k3s_daas", sources, modules), FRAMEWORK_DEPENDENCIES)
    if build_output.exists() and build_output.read_text(encoding="utf-8") == text:
        return False
    build_output.parent.mkdir(parents=True, exist_ok=True)
    build_output.write_text(text, encoding="utf-8")
    return True


def prepare_operator(state_dir: Path, key_file: Path, build_output: Path, sources: Path,
                     amount: int = DEFAULT_AMOUNT) -> OperatorReport:
    created = ensure_key(key_file)
    address = signer_from_file(key_file).address
    if created:
        fund_address(state_dir, address, amount)
    return OperatorReport(address, created, ensure_build_output(build_output, sources))
