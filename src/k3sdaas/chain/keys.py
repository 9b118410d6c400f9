"""Loading the signer's private key from a file or from text (an AWX credential's env variable).

Accepted forms: a ``suiprivkey1…`` bech32 string, the base64 ``flag‖key`` form of a Sui keystore
entry, or a Sui keystore file (a JSON list of those; the first entry is used). The key text is kept
out of ``repr`` and error messages so it cannot end up in a log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pysui.sui.sui_crypto import SuiKeyPair, keypair_from_keystring

from .errors import InvalidAddress, InvalidKey

_ADDRESS = re.compile(r"^0x[0-9a-f]{64}$")
# A keystore file is a JSON list of ~60-byte keys; this leaves room for a thousand of them.
MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Signer:
    """A key pair as pysui's configuration takes it, with its Sui address."""

    keystring: str = field(repr=False)
    address: str


def normalize_address(value: str, field_name: str = "address") -> str:
    """``0xABC`` -> ``0x000…abc``; anything but 1..64 hex digits after 0x is refused."""
    text = str(value).strip().lower()
    if not text.startswith("0x") or not 2 < len(text) <= 66 or not re.fullmatch(r"[0-9a-f]+", text[2:]):
        raise InvalidAddress(f"{field_name} must be 0x followed by up to 64 hex digits, got {value!r}",
                             field=field_name)
    normalized = "0x" + text[2:].rjust(64, "0")
    assert _ADDRESS.match(normalized)
    return normalized


def address_of(keypair: SuiKeyPair) -> str:
    """Sui address: blake2b-256 of the scheme flag followed by the public key."""
    flagged = keypair.public_key.scheme_and_key()
    return "0x" + hashlib.blake2b(flagged, digest_size=32).hexdigest()


def signer_from_text(text: str, *, field_name: str = "private_key") -> Signer:
    """Parse key text (bech32, base64 or a keystore JSON list)."""
    candidate = text.strip()
    if candidate.startswith("["):
        try:
            entries = json.loads(candidate)
        except json.JSONDecodeError:
            raise InvalidKey(f"{field_name} looks like a keystore list but is not valid JSON",
                             field=field_name) from None
        if not entries or not all(isinstance(e, str) for e in entries):
            raise InvalidKey(f"{field_name} keystore list must hold at least one key string", field=field_name)
        candidate = entries[0]
    try:
        keypair = keypair_from_keystring(candidate)
    except Exception:  # noqa: BLE001  # pysui raises several types; none may carry the key text into a message
        raise InvalidKey(
            f"{field_name} is not a Sui private key (expected suiprivkey1… bech32 or base64 flag+key)",
            field=field_name,
        ) from None
    return Signer(keystring=keypair.serialize(), address=address_of(keypair))


def signer_from_file(path: str | os.PathLike[str], *, field_name: str = "key_file") -> Signer:
    """Read the key from ``path``; refuse files other users can read, as ssh does.

    The file is opened without following a FIFO's writer (O_NONBLOCK) and checked before anything is
    read: a regular file, at most MAX_KEY_FILE_BYTES, mode 0600 or stricter. Then at most that much is read.
    """
    key_path = Path(path)
    shown = str(key_path)
    try:
        fd = os.open(key_path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InvalidKey(f"{field_name} {shown!r} does not exist", field=field_name) from None
    except OSError as exc:
        raise InvalidKey(f"{field_name} {shown!r} cannot be opened: {exc.strerror}", field=field_name) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidKey(f"{field_name} {shown!r} is not a regular file", field=field_name)
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise InvalidKey(f"{field_name} {shown!r} is {info.st_size} bytes; a key file holds at most "
                             f"{MAX_KEY_FILE_BYTES}", field=field_name)
        if info.st_mode & 0o077:
            raise InvalidKey(
                f"{field_name} {shown!r} is accessible by group or others (mode {oct(info.st_mode & 0o777)}); "
                "chmod 600 it",
                field=field_name,
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            text = handle.read(MAX_KEY_FILE_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidKey(f"{field_name} {shown!r} cannot be read: {exc.__class__.__name__}", field=field_name) from None
    finally:
        os.close(fd)
    if len(text) > MAX_KEY_FILE_BYTES:  # it grew after the check
        raise InvalidKey(f"{field_name} {shown!r} holds more than {MAX_KEY_FILE_BYTES} bytes", field=field_name)
    return signer_from_text(text, field_name=field_name)


def load_signer(*, key_file: str | None = None, private_key: str | None = None) -> Signer:
    """Exactly one of a key file or key text."""
    if key_file and private_key:
        raise InvalidKey("give key_file or private_key, not both", field="private_key")
    if key_file:
        return signer_from_file(key_file)
    if private_key:
        return signer_from_text(private_key)
    raise InvalidKey("a signing key is required: set key_file (SUI_KEY_FILE) or private_key (SUI_PRIVATE_KEY)",
                     field="key_file")
