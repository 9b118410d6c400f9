# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every Sui module shares: connection options with environment fallbacks, the client, diffs.

The options mirror ``plugins/doc_fragments/sui.py``. Keys come from a file (``SUI_KEY_FILE``) or from
text (``SUI_PRIVATE_KEY``, how an AWX credential injects a secret); the text option is ``no_log``.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.k3sdaas.core.plugins.module_utils.module import K3sdaasModule

try:
    from k3sdaas.chain import ChainClient, ChainSettings, load_signer, normalize_address, parse_amount
    from k3sdaas.chain.abi import tier_by_name
    from k3sdaas.errors import InvalidInput
except ImportError:
    pass  # K3sdaasModule reports the missing runtime library

U64_MAX = (1 << 64) - 1  # Move's u64: the range of every amount, duration and timestamp on chain


def sui_argument_spec():
    """Connection and signing options of every Sui module."""
    return dict(
        rpc_url=dict(type="str", required=True, fallback=(env_fallback, ["SUI_RPC_URL"])),
        key_file=dict(type="path", fallback=(env_fallback, ["SUI_KEY_FILE"])),
        private_key=dict(type="str", no_log=True, fallback=(env_fallback, ["SUI_PRIVATE_KEY"])),
        ca_file=dict(type="path", fallback=(env_fallback, ["SUI_CA_FILE"])),
        timeout=dict(type="float", default=30.0),
        retries=dict(type="int", default=3),
    )


def package_argument_spec(required=True):
    """The deployment the module works on, found from its package id."""
    return dict(package_id=dict(type="str", required=required, fallback=(env_fallback, ["K3SDAAS_PACKAGE_ID"])))


class SuiModule(K3sdaasModule):
    """A K3sdaasModule with the Sui options merged in and a connected ChainClient on demand."""

    def __init__(self, argument_spec, needs_package=True, **kwargs):
        spec = sui_argument_spec()
        if needs_package:
            spec.update(package_argument_spec())
        spec.update(argument_spec)
        kwargs.setdefault("mutually_exclusive", []).append(["key_file", "private_key"])
        kwargs.setdefault("required_one_of", []).append(["key_file", "private_key"])
        super().__init__(spec, **kwargs)
        self._needs_package = needs_package

    def settings(self):
        signer = load_signer(key_file=self.params["key_file"], private_key=self.params["private_key"])
        return ChainSettings(
            rpc_url=self.params["rpc_url"],
            signer=signer,
            # AWX's Sui wallet credential sets SUI_CA_FILE to "" when no CA is given: that means the system CAs.
            ca_file=self.params["ca_file"] or None,
            timeout=self.params["timeout"],
            retries=self.params["retries"],
        )

    def checked(self, function, *args):
        """``function(*args)``, failing the module with the runtime's error (bad amount, tier...)."""
        return self.guarded(function, *args)

    def execute(self, operation):
        """Run ``operation(client)`` (a coroutine function) with a connected client; exit with its result.

        The client is resolved to the deployment of ``package_id`` first when the module needs one.
        Any error fails the module with the error's message and the option at fault.
        """

        async def main():
            # check mode: the client simulates its transactions on the node, so it decides as a real run
            async with ChainClient(self.settings(), dry_run=self.check_mode) as client:
                if self._needs_package:
                    await client.resolve_deployment(self.params["package_id"])
                return await operation(client)

        self.exit_json(**self.guarded(lambda: self.run(main())))


def amount_in_mist(value, unit):
    """The O(amount) option as integer MIST (validated by the runtime)."""
    return parse_amount(value, default_unit=unit, field="amount")


def address(value, option):
    """A Sui address or object id in its full 0x + 64 hex form; ``None`` stays ``None``."""
    return None if value is None else normalize_address(value, option)


def tier_number(value, option):
    """``developer`` or ``2`` -> 2; the error names ``option``."""
    try:
        return tier_by_name(value)
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}", field=option) from None


def token_diff(before, after):
    """Ansible diff of a token: ``None`` stands for "no token"."""
    return dict(before=before or {}, after=after or {})
