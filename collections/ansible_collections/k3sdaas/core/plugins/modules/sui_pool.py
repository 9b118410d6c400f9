#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sui_pool
short_description: Read and configure the k3s_daas stake pool
version_added: 0.1.0
description:
  - Reports the pool's token lifetime, unstake cooldown, total stake and collected penalties.
  - Sets the token lifetime (O(token_ttl_ms)) and the unstake cooldown (O(unstake_cooldown_ms)) when they differ
    from the pool's; this needs the AdminCap, held by the signer.
options:
  token_ttl_ms:
    description:
      - How long a minted or refreshed SealToken stays valid, in milliseconds (the package's default is 30 days).
    type: int
  unstake_cooldown_ms:
    description:
      - How long after staking (or adding stake) a node must wait before unstaking, in milliseconds.
    type: int
extends_documentation_fragment:
  - k3sdaas.core.sui
  - k3sdaas.core.sui.package
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_sui
  - k3sdaas.core.attributes.check_mode_full
author:
  - K3s-DaaS engineers (@k3sdaas)
"""

EXAMPLES = r"""
- name: Tokens live 7 days; nodes wait a day before unstaking
  k3sdaas.core.sui_pool:
    package_id: "{{ k3sdaas_package_id }}"
    token_ttl_ms: 604800000
    unstake_cooldown_ms: 86400000

- name: Read the pool
  k3sdaas.core.sui_pool:
    package_id: "{{ k3sdaas_package_id }}"
  register: pool
"""

RETURN = r"""
pool:
  description: The pool after the change.
  returned: always
  type: dict
  contains:
    pool_id:
      description: The StakePool's object id.
      type: str
    token_ttl_ms:
      description: Token lifetime in milliseconds.
      type: int
      sample: 2592000000
    unstake_cooldown_ms:
      description: Unstake cooldown in milliseconds.
      type: int
      sample: 0
    staked_total_mist:
      description: All stake held by the pool, in MIST.
      type: int
    penalties_total_mist:
      description: Slashed stake collected by the pool, in MIST.
      type: int
"""

from ansible_collections.k3sdaas.core.plugins.module_utils.sui import U64_MAX, SuiModule

SETTINGS = ("token_ttl_ms", "unstake_cooldown_ms")


async def ensure_config(module, client):
    before = await client.pool_state()
    wanted = {name: module.params[name] for name in SETTINGS if module.params[name] is not None}
    changes = {name: value for name, value in wanted.items() if getattr(before, name) != value}
    if not changes:
        return dict(changed=False, pool=before.as_dict())
    await client.configure_pool(**changes)  # one transaction; simulated in check mode
    after = await client.pool_state()
    return dict(changed=True, pool=after.as_dict(), diff=dict(before=before.as_dict(), after=after.as_dict()))


def main():
    module = SuiModule(
        argument_spec=dict(
            token_ttl_ms=dict(type="int", no_log=False),
            unstake_cooldown_ms=dict(type="int"),
        ),
        ranges=dict(token_ttl_ms=(1, U64_MAX), unstake_cooldown_ms=(0, U64_MAX)),
    )
    module.execute(lambda client: ensure_config(module, client))


if __name__ == "__main__":
    main()
