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

    # Membership in the k3sdaas action group
    ACTIONGROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/k3sdaas.core.k3sdaas) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - k3sdaas.core.k3sdaas
"""

    CHECK_MODE_FULL = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""
