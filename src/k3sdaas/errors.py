"""The one exception family the runtime raises, so callers (Ansible modules, the master) can map it."""

from __future__ import annotations


class K3sdaasError(Exception):
    """Base of every error the runtime raises on purpose.

    ``field`` names the input at fault when there is one, so a module can say which option is wrong.
    ``retryable`` marks transport failures that may succeed on a later attempt.
    """

    retryable: bool = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInput(K3sdaasError):
    """A value given by the caller is malformed or out of range."""


class NotFound(K3sdaasError):
    """The object, token, enclave or resource asked for does not exist."""


class Unavailable(K3sdaasError):
    """A remote service (RPC node, nitro-cli, API) did not answer."""

    retryable = True
