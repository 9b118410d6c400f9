# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:

    # Standard documentation fragment
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    # Membership in the action groups, one per kind of connection (meta/runtime.yml)
    ACTIONGROUP_SUI = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/k3sdaas.core.sui) in C(module_defaults) to set the Sui connection for this module.
    support: full
    membership:
      - k3sdaas.core.sui
"""

    ACTIONGROUP_NITRO = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/k3sdaas.core.nitro) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - k3sdaas.core.nitro
"""

    ACTIONGROUP_AWS = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/k3sdaas.core.aws) in C(module_defaults) to set the AWS connection for this module.
      - The group extends C(amazon.aws.aws), so the same defaults also reach every amazon.aws module.
    support: full
    membership:
      - k3sdaas.core.aws
"""

    CHECK_MODE_FULL = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""
