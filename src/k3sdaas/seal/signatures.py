"""Sui personal-message signatures: verify (ed25519, secp256k1, secp256r1) and sign.

What is signed is Blake2b-256(intent ‖ BCS(vector<u8> message)) with the PersonalMessage intent
``[3, 0, 0]``. ed25519 signs that digest directly; the two ECDSA schemes sign SHA-256 of it, as
64-byte ``r ‖ s`` with ``s`` in the lower half of the group order (Sui refuses high-S as malleable).
The serialized signature is base64 of ``flag ‖ signature ‖ public key``; the address is
Blake2b-256(flag ‖ public key).

ed25519 is checked by OpenSSL under RFC 8032's rules, a little stricter than the ZIP-215 rules of
fastcrypto and the TypeScript SDK on crafted non-canonical encodings; no honest signer produces those.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Final

import pysui_fastcrypto as pfc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pysui.sui.sui_crypto import SuiKeyPair, keypair_from_keystring
from pysui.sui.sui_utils import serialize_uint32_as_uleb128 as uleb128

from ..chain.keys import Signer
from .errors import BadSignature, SealError

PERSONAL_MESSAGE_INTENT: Final = bytes([3, 0, 0])
MAX_MESSAGE_BYTES: Final = 16 * 1024  # a challenge is a few hundred bytes; bound what we hash
_MAX_SIGNATURE_CHARS: Final = 200  # base64 of the largest form here, 98 bytes, is 132 characters

ED25519, SECP256K1, SECP256R1 = 0x00, 0x01, 0x02
# flag -> (name, public key length, curve and group order for the ECDSA schemes)
_SCHEMES: Final[dict[int, tuple[str, int, ec.EllipticCurve | None, int]]] = {
    ED25519: ("ed25519", 32, None, 0),
    SECP256K1: ("secp256k1", 33, ec.SECP256K1(), 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141),
    SECP256R1: ("secp256r1", 33, ec.SECP256R1(), 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
}
_OTHER_FLAGS: Final = {0x03: "multisig", 0x05: "zkLogin", 0x06: "passkey"}


def personal_message_digest(message: bytes) -> bytes:
    """The 32 bytes a Sui wallet signs for ``signPersonalMessage(message)``."""
    if not isinstance(message, bytes):
        raise BadSignature("the signed message must be bytes")
    if len(message) > MAX_MESSAGE_BYTES:
        raise BadSignature(f"message is {len(message)} bytes, more than the {MAX_MESSAGE_BYTES} accepted")
    payload = PERSONAL_MESSAGE_INTENT + uleb128(len(message)) + message
    return hashlib.blake2b(payload, digest_size=32).digest()


def sui_address(flag: int, public_key: bytes) -> str:
    return "0x" + hashlib.blake2b(bytes([flag]) + public_key, digest_size=32).hexdigest()


def verify_personal_message(message: bytes, signature: str) -> str:
    """Verify a serialized Sui signature over ``message``; return the signer's address or raise ``BadSignature``."""
    if not isinstance(signature, str) or len(signature) > _MAX_SIGNATURE_CHARS:
        raise BadSignature("signature must be a base64 string of at most 200 characters")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("signature is not valid base64") from None
    if not raw:
        raise BadSignature("signature is empty")
    flag = raw[0]
    if flag not in _SCHEMES:
        kind = _OTHER_FLAGS.get(flag, "unknown")
        raise BadSignature(f"signature scheme flag 0x{flag:02x} ({kind}) is not supported; use ed25519, "
                           "secp256k1 or secp256r1")
    name, key_len, curve, order = _SCHEMES[flag]
    if len(raw) != 1 + 64 + key_len:
        raise BadSignature(f"{name} signature must be {1 + 64 + key_len} bytes (flag, 64-byte signature, "
                           f"{key_len}-byte public key), got {len(raw)}")
    sig, public_key = raw[1:65], raw[65:]
    digest = personal_message_digest(message)
    try:
        if curve is None:
            ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(sig, digest)
        else:
            r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            if not (0 < r < order and 0 < s < order):
                raise BadSignature(f"{name} signature has r or s out of range")
            if s > order // 2:
                raise BadSignature(f"{name} signature is not in low-S form (Sui refuses high-S signatures)")
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key)
            # cryptography hashes ``digest`` with SHA-256 itself, which is what Sui's ECDSA schemes sign.
            key.verify(encode_dss_signature(r, s), digest, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature(f"{name} signature does not verify for this message and public key") from None
    except ValueError:
        raise BadSignature(f"{name} public key in the signature is not a valid point") from None
    return sui_address(flag, public_key)


def sign_personal_message(key: Signer | SuiKeyPair, message: bytes) -> str:
    """Sign ``message`` as a Sui wallet's ``signPersonalMessage`` does; return the serialized signature.

    ``key`` is a ``k3sdaas.chain.keys.Signer`` (what ``load_signer`` returns) or a pysui key pair. The
    BCS encoding is ours: pysui 1.5.1's ``sign_personal_message`` drops every 0x00 byte of the message
    from it (its int-to-bytes gives 0 no bytes), so its signatures of such messages verify nowhere.
    """
    if len(message) > MAX_MESSAGE_BYTES:
        raise SealError(f"message is {len(message)} bytes, more than the {MAX_MESSAGE_BYTES} accepted")
    keypair = keypair_from_keystring(key.keystring) if isinstance(key, Signer) else key
    private = keypair.private_key
    if private is None:
        raise SealError("the key pair has no private key to sign with")
    payload = base64.b64encode(uleb128(len(message)) + message).decode("ascii")
    signed = pfc.sign_digest(private.scheme, private.key_bytes, payload, PERSONAL_MESSAGE_INTENT)
    return base64.b64encode(bytes(signed)).decode("ascii")
