#!/usr/bin/env python3
"""Regenerate tests/fixtures/seal/vectors.json: Sui personal-message signatures for the interop tests.

- ``ts``: made by Mysten's TypeScript SDK (ts/vectors.mjs, the exact version in ts/package-lock.json);
- ``pysui``: the same keys and messages signed by pysui's own ``SuiKeyPair.sign_personal_message``;
- ``negative``: the TS signatures broken in the ways a verifier must refuse.

Every case carries ``ts_valid`` / ``ts_address``: what the SDK's ``verifyPersonalMessageSignature``
answered when the file was made. The tests hold our verifier to the same answers.

Usage: python tests/seal/make_vectors.py [--check]   (needs node and npm; --check compares, writes nothing)
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pysui.sui.sui_crypto import keypair_from_keystring

TS_DIR = Path(__file__).with_name("ts")
FIXTURE = Path(__file__).parents[1] / "fixtures" / "seal" / "vectors.json"
ORDERS = {  # group orders, for the high-S forms
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}


def npm_install() -> None:
    """``npm ci`` into ts/node_modules (git-ignored) unless it already matches the lock file."""
    lock = TS_DIR / "package-lock.json"
    installed = TS_DIR / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install @mysten/sui for the interop vectors")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TS_DIR, check=True,
                   timeout=600)


def node(mode: str, cases: list[dict[str, Any]] | None = None) -> Any:
    """Run ts/vectors.mjs in ``mode`` (sign | verify) and return its JSON answer."""
    node_bin = shutil.which("node")
    if node_bin is None:
        raise RuntimeError("node is needed for the TypeScript SDK vectors")
    npm_install()
    done = subprocess.run([node_bin, "vectors.mjs", mode], cwd=TS_DIR, input=json.dumps(cases or []),
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sig(case: dict[str, Any]) -> bytearray:
    return bytearray(base64.b64decode(case["signature"]))


def negatives(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Broken copies of the TS vectors: each must be refused, and says why in ``defect``."""
    by_name = {case["name"]: case for case in ts}
    out: list[dict[str, Any]] = []

    def add(name: str, base: dict[str, Any], defect: str, signature: bytes | str,
            message_b64: str | None = None) -> None:
        out.append({"name": name, "scheme": base["scheme"], "defect": defect,
                    "message_b64": message_b64 or base["message_b64"],
                    "signature": signature if isinstance(signature, str) else _b64(signature)})

    for scheme in ("ed25519", "secp256k1", "secp256r1"):
        base = by_name[f"{scheme}/challenge"]
        raw = _sig(base)
        add(f"{scheme}/wrong-message", base, "wrong message", raw, by_name[f"{scheme}/utf8"]["message_b64"])
        flipped = raw.copy()
        flipped[10] ^= 0x01
        add(f"{scheme}/flipped-signature-byte", base, "flipped byte", flipped)
        flipped = raw.copy()
        flipped[-1] ^= 0x01
        add(f"{scheme}/flipped-public-key-byte", base, "flipped byte", flipped)
        add(f"{scheme}/truncated", base, "wrong length", raw[:-1])
        add(f"{scheme}/extended", base, "wrong length", raw + b"\x00")
        for flag, label in ((0x03, "multisig"), (0x05, "zklogin"), (0x07, "unknown")):
            add(f"{scheme}/flag-{label}", base, "wrong flag", bytes([flag]) + raw[1:])
        if scheme in ORDERS:
            other = 0x02 if raw[0] == 0x01 else 0x01
            add(f"{scheme}/flag-other-curve", base, "wrong flag", bytes([other]) + raw[1:])
            s = int.from_bytes(raw[33:65], "big")
            high = raw.copy()
            high[33:65] = (ORDERS[scheme] - s).to_bytes(32, "big")
            add(f"{scheme}/high-s", base, "high-S", high)
        else:
            add(f"{scheme}/flag-secp256k1", base, "wrong flag", bytes([0x01]) + raw[1:])
    base = by_name["ed25519/challenge"]
    add("empty-signature", base, "wrong length", "")
    add("not-base64", base, "not base64", "not*base64!")
    return out


def pysui_vectors(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The TS vectors' keys and messages, signed by pysui's keypairs."""
    out = []
    for case in ts:
        keypair = keypair_from_keystring(case["secret_key"])
        out.append({**case, "signature": keypair.sign_personal_message(case["message_b64"])})
    return out


def build() -> dict[str, Any]:
    ts = node("sign")
    groups = {"ts": ts, "pysui": pysui_vectors(ts), "negative": negatives(ts)}
    for cases in groups.values():
        verdicts = {v["name"]: v for v in node("verify", cases)}
        for case in cases:
            verdict = verdicts[case["name"]]
            case["ts_valid"] = verdict["valid"]
            case["ts_address"] = verdict.get("address")
    lock = json.loads((TS_DIR / "package-lock.json").read_text())
    return {"generated_by": "tests/seal/make_vectors.py",
            "versions": {"@mysten/sui": lock["packages"]["node_modules/@mysten/sui"]["version"],
                         "pysui": version("pysui")},
            **groups}


def main(argv: list[str]) -> int:
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in argv:
        if FIXTURE.read_text(encoding="utf-8") != text:
            print(f"{FIXTURE} is out of date: run python tests/seal/make_vectors.py", file=sys.stderr)
            return 1
        return 0
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
