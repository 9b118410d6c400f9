"""Seal proof of possession: a canonical challenge signed as a Sui personal message.

A worker or user fetches a nonce from the master, builds a ``Challenge`` naming the master (audience),
its seal token and its address, signs ``challenge.message()`` with its Sui key (any Sui wallet's
``signPersonalMessage`` gives the same signature), and the master checks it with ``verify_challenge``
before consuming the nonce and asking the chain about the token.
"""

from .challenge import HEADER, Challenge, check_challenge, verify_challenge
from .errors import BadSignature, ChallengeInvalid, SealError
from .signatures import personal_message_digest, sign_personal_message, sui_address, verify_personal_message
from .tiers import TIER_NAMES, kubernetes_groups

__all__ = [
    "HEADER",
    "TIER_NAMES",
    "BadSignature",
    "Challenge",
    "ChallengeInvalid",
    "SealError",
    "check_challenge",
    "kubernetes_groups",
    "personal_message_digest",
    "sign_personal_message",
    "sui_address",
    "verify_challenge",
    "verify_personal_message",
]
