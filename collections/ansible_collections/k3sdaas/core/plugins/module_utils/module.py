# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base every k3sdaas.core module is built on, shaped like amazon.aws's AnsibleAWSModule.

It wraps (rather than subclasses) AnsibleModule, checks that the ``k3sdaas`` runtime library is
importable and numeric options are in range, runs the runtime's async calls, and turns every error into
one ``fail_json`` shape (``failure``): ``msg``, ``error_type`` and, when known, the ``field`` at fault.
"""

from __future__ import annotations

import asyncio
import math
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from k3sdaas.errors import K3sdaasError
except ImportError:
    K3sdaasError = None  # type: ignore[misc,assignment]  # checked through RUNTIME_IMPORT_ERROR
    RUNTIME_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    RUNTIME_IMPORT_ERROR = None


class ModuleError(Exception):
    """A refusal by a module's own logic that the user can fix; ``field`` names the option at fault."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def failure(exc, msg=None):
    """The ``fail_json`` arguments for ``exc``: the one error shape of every k3sdaas.core module.

    Typed errors (the runtime's K3sdaasError, a module's ModuleError) give their message, type and the
    option at fault and no exception traceback (``exception=None``: with tracebacks enabled, ansible-core
    shows the fail_json call, not the handled exception); anything else is a bug and keeps its traceback.
    """
    typed = isinstance(exc, ModuleError) or (K3sdaasError is not None and isinstance(exc, K3sdaasError))
    if not typed:
        return dict(
            msg="{}: {}".format(msg or "Unexpected error", exc),
            error_type=type(exc).__name__,
            exception=traceback.format_exc(),
        )
    extra = dict(msg=f"{msg}: {exc}" if msg else str(exc), error_type=type(exc).__name__, exception=None)
    if getattr(exc, "field", None):
        extra["field"] = exc.field
    return extra


def range_error(option, value, bounds):
    """Why ``value`` of ``option`` is outside ``bounds`` (low, high; None is open), or None."""
    low, high = bounds
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{option} must be a finite number, got {value}"
    if (low is not None and value < low) or (high is not None and value > high):
        wanted = " and ".join(
            text.format(bound) for text, bound in (("at least {0}", low), ("at most {0}", high)) if bound is not None
        )
        return f"{option} must be {wanted}, got {value}"
    return None


class K3sdaasModule:
    """An AnsibleModule plus the runtime check and error mapping all our modules share.

    ``ranges`` maps numeric options to (low, high) bounds, checked right after Ansible's own type checks so
    that an out-of-range value fails naming the option before anything is read or changed.
    """

    def __init__(self, argument_spec, requires_runtime=True, ranges=None, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        self._module = AnsibleModule(argument_spec=argument_spec, **kwargs)
        if requires_runtime and RUNTIME_IMPORT_ERROR is not None:
            self._module.fail_json(
                msg=missing_required_lib("k3sdaas", url="https://github.com/k3sdaas/k3s-daas"),
                exception=RUNTIME_IMPORT_ERROR,
            )
        for option, bounds in (ranges or {}).items():
            problem = range_error(option, self.params[option], bounds)
            if problem:
                self._module.fail_json(msg=problem, field=option, error_type="InvalidInput")

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

    def hide(self, secret):
        """Mask ``secret`` wherever it would appear in this module's result (a value found at run time)."""
        self._module.no_log_values.add(secret)

    def warn(self, warning):
        self._module.warn(warning)

    def get_bin_path(self, name, required=False):
        return self._module.get_bin_path(name, required=required)

    def run_command(self, args, **kwargs):
        return self._module.run_command(args, **kwargs)

    def run(self, coroutine):
        """Run one of the runtime's async operations to completion."""
        return asyncio.run(coroutine)

    def guarded(self, function, *args, **kwargs):
        """``function(*args, **kwargs)``; any exception fails the module through ``fail_from_exception``."""
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught
            self.fail_from_exception(exc)

    def fail_from_exception(self, exc, msg=None):
        """Fail with the error's own message and field; unexpected errors keep their traceback."""
        self._module.fail_json(**failure(exc, msg))
