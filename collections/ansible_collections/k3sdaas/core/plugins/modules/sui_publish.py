#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sui_publish
short_description: Publish the k3s_daas Move package and create its stake pool
version_added: 0.1.0
description:
  - Makes sure the k3s_daas package is deployed. Publishing runs the package's C(init), which creates the shared
    StakePool and EnclaveRegistry and gives the AdminCap to the signer; the UpgradeCap is kept by the signer.
  - The module is idempotent. With O(package_id) it reads that deployment. Without it, it looks for the newest
    UpgradeCap of a k3s_daas package the signer holds and reads that deployment; only when there is none does it
    publish O(build_output).
options:
  build_output:
    description:
      - The JSON that C(sui move build --dump-bytecode-as-base64) prints for the package
        (C(modules) as base64, C(dependencies) as object ids).
      - Required when the package has to be published. When set, it is read and checked on every run, also when
        the deployment already exists; it must be a regular file of at most 1 MiB.
    type: path
  package_id:
    description:
      - A deployment already recorded; it must exist and the module only reads it.
      - If not set, the E(K3SDAAS_PACKAGE_ID) environment variable is used.
    type: str
extends_documentation_fragment:
  - k3sdaas.core.sui
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_sui
  - k3sdaas.core.attributes.check_mode_full
author:
  - K3s-DaaS engineers (@k3sdaas)
"""

EXAMPLES = r"""
- name: Build the package (where the sui binary is installed)
  ansible.builtin.command: sui move build --dump-bytecode-as-base64 --path move
  register: build
  changed_when: false

- name: Save the build output
  ansible.builtin.copy:
    content: "{{ build.stdout }}"
    dest: /tmp/k3s_daas.build.json
    mode: "0600"

- name: Publish k3s_daas (once)
  k3sdaas.core.sui_publish:
    rpc_url: fullnode.testnet.sui.io:443
    key_file: /etc/k3sdaas/operator.key
    build_output: /tmp/k3s_daas.build.json
  register: k3sdaas

- name: Remember the deployment
  ansible.builtin.set_fact:
    k3sdaas_package_id: "{{ k3sdaas.package_id }}"
"""

RETURN = r"""
package_id:
  description: The package's object id; empty in check mode before the first publish.
  returned: always
  type: str
  sample: "0x3c0f1e1a4c9d8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a19080"
pool_id:
  description: The shared StakePool.
  returned: always
  type: str
registry_id:
  description: The shared EnclaveRegistry.
  returned: always
  type: str
admin_cap_id:
  description: The AdminCap created at publication.
  returned: always
  type: str
upgrade_cap_id:
  description: The UpgradeCap, when the signer holds it.
  returned: always
  type: str
address:
  description: The signer's address.
  returned: always
  type: str
"""

from ansible_collections.k3sdaas.core.plugins.module_utils.sui import SuiModule, address, package_argument_spec

try:
    from k3sdaas.chain import load_build_output
except ImportError:
    pass  # SuiModule reports the missing runtime library

EMPTY = dict(package_id="", pool_id="", registry_id="", admin_cap_id="", upgrade_cap_id="")


def as_result(deployment):
    return {key: value or "" for key, value in deployment.as_dict().items()}


async def ensure_published(module, client, package_id, build):
    if package_id:
        deployment = await client.resolve_deployment(package_id)
        return dict(as_result(deployment), changed=False, address=client.address)
    deployment = await client.find_deployment()
    if deployment is not None:
        return dict(as_result(deployment), changed=False, address=client.address)
    if build is None:
        module.fail_json(
            msg=f"no k3s_daas deployment of {client.address} was found and build_output is not set",
            field="build_output",
        )
    modules, dependencies = build
    if module.check_mode:
        return dict(EMPTY, changed=True, address=client.address, diff=dict(before={}, after=dict(published=True)))
    deployment = await client.publish(modules, dependencies)
    result = as_result(deployment)
    return dict(result, changed=True, address=client.address, diff=dict(before={}, after=result))


def main():
    module = SuiModule(
        argument_spec=dict(build_output=dict(type="path"), **package_argument_spec(required=False)),
        needs_package=False,
    )
    package_id = module.checked(address, module.params["package_id"], "package_id")
    # A given build output is read first, whether or not it is needed, so a bad one fails every run alike.
    build = None if module.params["build_output"] is None else module.checked(
        load_build_output, module.params["build_output"]
    )
    module.execute(lambda client: ensure_published(module, client, package_id, build))


if __name__ == "__main__":
    main()
