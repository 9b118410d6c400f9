"""Where the state store's 32-byte data key comes from.

``FileKeyProvider`` (the local default) keeps the key in a 0600 file. ``KmsKeyProvider`` (production)
keeps only the data key encrypted under an AWS KMS key beside the database (envelope encryption):
``GenerateDataKey`` once, ``Decrypt`` at every start.

KMS key policy for the enclave
------------------------------
The KMS key should let the master's instance role decrypt only from inside an enclave whose image is
the released one, by conditioning ``kms:Decrypt`` and ``kms:GenerateDataKey`` on the measurements in
the attestation document (PCR0 = enclave image, PCR1 = kernel and boot ramfs, PCR2 = application,
PCR8 = the signing certificate of the EIF; values are the hex SHA-384 ``nitro-cli describe-eif`` prints)::

    {"Sid": "MasterEnclaveOnly", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::<account>:role/<master-instance-role>"},
     "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
     "Condition": {
       "StringEquals": {"kms:EncryptionContext:purpose": "k3sdaas-nautilus-state"},
       "StringEqualsIgnoreCase": {
         "kms:RecipientAttestation:PCR0": "<pcr0>", "kms:RecipientAttestation:PCR1": "<pcr1>",
         "kms:RecipientAttestation:PCR2": "<pcr2>", "kms:RecipientAttestation:PCR8": "<pcr8>"}}}

A second statement should let the administrators manage the key (``kms:Create*``, ``kms:Describe*``,
``kms:Enable*``, ``kms:Put*``, ``kms:ScheduleKeyDeletion`` …) but not use it for ``Decrypt``: whoever
may decrypt outside the enclave can read the state.

Real KMS evaluates those conditions only when the request carries ``Recipient``
(``{"AttestationDocument": <NSM document with the enclave's RSA public key>, "KeyEncryptionAlgorithm":
"RSAES_OAEP_SHA_256"}``); it then returns the key as ``CiphertextForRecipient`` (CMS enveloped to that
RSA key) instead of ``Plaintext``. This provider does not send ``Recipient`` yet, so against a key with
the policy above it is refused; the tests run it against moto's KMS, which accepts any caller and
cannot check an attestation document. The calls, the envelope format and the error paths are the real ones.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidInput, K3sdaasError, Unavailable

KEY_BYTES = 32
# Bound into the ciphertext: a data key made for the state store decrypts only with this context,
# and a key policy can require it (kms:EncryptionContext:purpose).
ENCRYPTION_CONTEXT = {"purpose": "k3sdaas-nautilus-state"}
MAX_WRAPPED_BYTES = 4096  # a KMS ciphertext blob of a 32-byte key is under 200 bytes


class StateKeyError(K3sdaasError):
    """The data key cannot be obtained (a bad key file, KMS refused) or does not open the database."""


class KeyProvider(Protocol):
    def data_key(self, db_path: Path) -> bytes:
        """The 32-byte data key for the database at ``db_path`` (created on first use)."""
        ...


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file; False when it already exists (another process won the race)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateKeyError(f"{str(path)!r} cannot be created: {exc.strerror}", field="key_file") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return True


def _read_private(path: Path, what: str, *, exact: int | None = None, limit: int = MAX_WRAPPED_BYTES) -> bytes:
    """Read a regular file of mode 0600 or stricter; refuse anything else, naming the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise StateKeyError(f"{what} {str(path)!r} cannot be opened: {exc.strerror}", field="key_file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateKeyError(f"{what} {str(path)!r} is not a regular file", field="key_file")
        if info.st_mode & 0o077:
            raise StateKeyError(f"{what} {str(path)!r} is accessible by group or others (mode "
                                f"{oct(info.st_mode & 0o777)}); chmod 600 it", field="key_file")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if exact is not None and len(data) != exact:
        raise StateKeyError(f"{what} {str(path)!r} holds {len(data)} bytes, not the {exact} of a key", field="key_file")
    if not 0 < len(data) <= limit:
        raise StateKeyError(f"{what} {str(path)!r} must hold 1 to {limit} bytes", field="key_file")
    return data


class FileKeyProvider:
    """A random 32-byte key in a 0600 file, created when absent."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def data_key(self, db_path: Path) -> bytes:
        _create_exclusive(self.path, secrets.token_bytes(KEY_BYTES))
        return _read_private(self.path, "state key file", exact=KEY_BYTES)

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self.path)!r})"


class KmsKeyProvider:
    """Envelope encryption: the data key, encrypted under KMS key ``key_id``, lives in ``<db>.kms-key``."""

    def __init__(self, key_id: str, region: str, endpoint_url: str | None = None) -> None:
        if not isinstance(key_id, str) or not 0 < len(key_id) <= 2048:
            raise InvalidInput("kms key_id must be a key id, ARN or alias of 1 to 2048 characters", field="key_id")
        if not isinstance(region, str) or not 0 < len(region) <= 64:
            raise InvalidInput("kms region must be an AWS region name such as eu-west-1", field="region")
        import boto3  # type: ignore[import-untyped]  # only the KMS path needs boto3

        self.key_id = key_id
        self._kms: Any = boto3.client("kms", region_name=region, endpoint_url=endpoint_url)

    @staticmethod
    def wrapped_key_path(db_path: Path) -> Path:
        return db_path.with_name(db_path.name + ".kms-key")

    def data_key(self, db_path: Path) -> bytes:
        path = self.wrapped_key_path(db_path)
        if not path.exists():
            generated = self._call("GenerateDataKey", KeyId=self.key_id, KeySpec="AES_256",
                                   EncryptionContext=ENCRYPTION_CONTEXT)
            if _create_exclusive(path, generated["CiphertextBlob"]):
                return bytes(generated["Plaintext"])
        wrapped = _read_private(path, "encrypted state key")
        plaintext = bytes(self._call("Decrypt", KeyId=self.key_id, CiphertextBlob=wrapped,
                                     EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"])
        if len(plaintext) != KEY_BYTES:
            raise StateKeyError(f"KMS returned a {len(plaintext)}-byte key for {str(path)!r}, not {KEY_BYTES}")
        return plaintext

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        method = {"GenerateDataKey": self._kms.generate_data_key, "Decrypt": self._kms.decrypt}[operation]
        try:
            return dict(method(**params))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StateKeyError(f"KMS {operation} with key {self.key_id!r} was refused: {error.get('Code', '?')}: "
                            f"{error.get('Message', '')}", field="key_id") from None
        except BotoCoreError as exc:
            raise Unavailable(f"KMS {operation} with key {self.key_id!r} failed: {exc}") from None

    def __repr__(self) -> str:
        return f"KmsKeyProvider({self.key_id!r})"
