# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base every k3sdaas.core module is built on, shaped like amazon.aws's AnsibleAWSModule.

It wraps (rather than subclasses) AnsibleModule, checks that the ``k3sdaas`` runtime library is
importable, runs the runtime's async calls, and turns runtime errors into one ``fail_json`` shape:
``msg``, ``error_type`` and, when the runtime knows it, the ``field`` at fault.
"""

from __future__ import annotations

import asyncio
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from k3sdaas.errors import K3sdaasError
except ImportError:
    K3sdaasError = None
    RUNTIME_IMPORT_ERROR = traceback.format_exc()
else:
    RUNTIME_IMPORT_ERROR = None


class K3sdaasModule:
    """An AnsibleModule plus the runtime check and error mapping all our modules share."""

    def __init__(self, argument_spec, requires_runtime=True, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        self._module = AnsibleModule(argument_spec=argument_spec, **kwargs)
        if requires_runtime and RUNTIME_IMPORT_ERROR is not None:
            self._module.fail_json(
                msg=missing_required_lib("k3sdaas", url="https://github.com/k3sdaas/k3s-daas"),
                exception=RUNTIME_IMPORT_ERROR,
            )

    @property
    def params(self):
        return self._module.params

    @property
    def check_mode(self):
        return self._module.check_mode

    @property
    def diff_mode(self):
        return self._module._diff

    def exit_json(self, **kwargs):
        self._module.exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self._module.fail_json(msg=msg, **kwargs)

    def warn(self, warning):
        self._module.warn(warning)

    def get_bin_path(self, name, required=False):
        return self._module.get_bin_path(name, required=required)

    def run_command(self, args, **kwargs):
        return self._module.run_command(args, **kwargs)

    def run(self, coroutine):
        """Run one of the runtime's async operations to completion."""
        return asyncio.run(coroutine)

    def fail_from_exception(self, exc, msg=None):
        """Fail with the runtime error's own message; unexpected errors keep their traceback."""
        if K3sdaasError is not None and isinstance(exc, K3sdaasError):
            extra = {"error_type": type(exc).__name__}
            if exc.field:
                extra["field"] = exc.field
            text = "{0}: {1}".format(msg, exc) if msg else str(exc)
            self._module.fail_json(msg=text, **extra)
        text = "{0}: {1}".format(msg or "Unexpected error", exc)
        self._module.fail_json(msg=text, error_type=type(exc).__name__, exception=traceback.format_exc())
