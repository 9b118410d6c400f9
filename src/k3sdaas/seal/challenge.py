"""The seal challenge: what a worker or user signs to prove it holds the key of a seal token's owner.

The message is plain UTF-8 text a wallet can show, one ``name: value`` line per field after a fixed
header, in a fixed order, no trailing newline::

    K3s-DaaS seal proof v1
    nonce: 3q2-7w…
    audience: https://master.example:6443
    token_id: 0x…64 hex
    address: 0x…64 hex
    issued_at_ms: 1764579600000

Only this exact form parses, so one challenge has one message and a signature cannot be replayed
under a reworded one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..errors import InvalidInput
from .errors import ChallengeInvalid
from .signatures import MAX_MESSAGE_BYTES, verify_personal_message

HEADER: Final = "K3s-DaaS seal proof v1"
FIELDS: Final = ("nonce", "audience", "token_id", "address", "issued_at_ms")
# Bounds on the protocol's own values: the server's nonces are URL-safe base64, audiences are URLs.
_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")
_AUDIENCE: Final = re.compile(r"https?://[!-~]{1,240}")  # printable ASCII, no spaces or newlines
_ID: Final = re.compile(r"0x[0-9a-f]{64}")
_MS: Final = re.compile(r"0|[1-9][0-9]{0,15}")


def _invalid(message: str, field: str) -> ChallengeInvalid:
    return ChallengeInvalid(message, reason="format", field=field)


@dataclass(frozen=True)
class Challenge:
    """One proof-of-possession challenge; construction refuses values that are not canonical."""

    nonce: str
    audience: str
    token_id: str
    address: str
    issued_at_ms: int

    def __post_init__(self) -> None:
        checks = (
            ("nonce", _NONCE, "16 to 128 URL-safe base64 characters"),
            ("audience", _AUDIENCE, "an http(s) URL of at most 248 printable characters"),
            ("token_id", _ID, "0x followed by 64 lowercase hex digits"),
            ("address", _ID, "0x followed by 64 lowercase hex digits"),
        )
        for name, pattern, expected in checks:
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise _invalid(f"challenge {name} must be {expected}", name)
        ms = self.issued_at_ms
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms < 10**16:
            raise _invalid("challenge issued_at_ms must be an integer of milliseconds since the epoch", "issued_at_ms")

    def message(self) -> bytes:
        lines = [HEADER] + [f"{name}: {getattr(self, name)}" for name in FIELDS]
        return "\n".join(lines).encode("utf-8")

    @classmethod
    def parse(cls, message: bytes) -> Challenge:
        if not isinstance(message, bytes) or len(message) > MAX_MESSAGE_BYTES:
            raise _invalid(f"challenge must be at most {MAX_MESSAGE_BYTES} bytes", "message")
        try:
            lines = message.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise _invalid("challenge is not UTF-8 text", "message") from None
        if lines[0] != HEADER:
            raise _invalid(f"challenge must start with the line {HEADER!r}", "message")
        if len(lines) != 1 + len(FIELDS):
            raise _invalid(f"challenge must have {len(FIELDS)} field lines after the header, in the order "
                           f"{', '.join(FIELDS)}", "message")
        values: dict[str, str] = {}
        for name, line in zip(FIELDS, lines[1:], strict=True):
            prefix = f"{name}: "
            if not line.startswith(prefix):
                raise _invalid(f"challenge line {len(values) + 2} must be '{name}: <value>'", name)
            values[name] = line[len(prefix):]
        if not _MS.fullmatch(values["issued_at_ms"]):
            raise _invalid("challenge issued_at_ms must be a decimal integer without leading zeros", "issued_at_ms")
        return cls(values["nonce"], values["audience"], values["token_id"], values["address"],
                   int(values["issued_at_ms"]))


def check_challenge(ch: Challenge, *, audience: str, now_ms: int, max_age_ms: int, max_skew_ms: int) -> None:
    """Refuse a challenge meant for another master, issued too long ago, or too far ahead of ``now_ms``.

    The audience is compared exactly (scheme, host, port, path): the master's configured URL is the one
    its ``/api/v1/challenge`` answer tells the client to sign.
    """
    for name, value in (("now_ms", now_ms), ("max_age_ms", max_age_ms), ("max_skew_ms", max_skew_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**16:
            raise InvalidInput(f"{name} must be a non-negative integer of milliseconds, got {value!r}", field=name)
    if ch.audience != audience:
        raise ChallengeInvalid(f"challenge audience {ch.audience!r} is not this master ({audience!r})",
                               reason="audience", field="audience")
    age = now_ms - ch.issued_at_ms
    if age > max_age_ms:
        raise ChallengeInvalid(f"challenge was issued {age} ms ago, more than the {max_age_ms} ms allowed",
                               reason="stale", field="issued_at")
    if -age > max_skew_ms:
        raise ChallengeInvalid(f"challenge is issued {-age} ms in the future, more than the {max_skew_ms} ms "
                               "clock skew allowed", reason="future", field="issued_at")


def verify_challenge(ch: Challenge, signature: str, *, audience: str, now_ms: int, max_age_ms: int,
                     max_skew_ms: int) -> None:
    """The whole seal check but the nonce and the chain: signature by ``ch.address``, audience, freshness."""
    signer = verify_personal_message(ch.message(), signature)
    if signer != ch.address:
        raise ChallengeInvalid(f"challenge is signed by {signer}, not by its address {ch.address}",
                               reason="address", field="address")
    check_challenge(ch, audience=audience, now_ms=now_ms, max_age_ms=max_age_ms, max_skew_ms=max_skew_ms)
