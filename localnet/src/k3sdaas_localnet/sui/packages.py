"""Packages the stand-in knows how to run: handler tables by package name, type scopes and layouts."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .handlers import k8s_gateway, nitro_attestation, registry, staking
from .handlers.base import MoveModule
from .movetypes import FRAMEWORK, MoveType, TypeScope, normalize_address, parse_type
from .objects import Layouts

K3S_DAAS = "k3s_daas"
K3S_DAAS_MODULES: tuple[MoveModule, ...] = (staking.MODULE, registry.MODULE, k8s_gateway.MODULE)

# Framework structs whose layout a rendered object or event may need.
_FRAMEWORK_LAYOUTS = {
    f"{FRAMEWORK}::package::UpgradeCap": (("id", "UID"), ("package", "ID"), ("version", "u64"), ("policy", "u8")),
    f"{FRAMEWORK}::coin::Coin": (("id", "UID"), ("balance", "Balance<SUI>")),
    f"{FRAMEWORK}::clock::Clock": (("id", "UID"), ("timestamp_ms", "u64")),
}


@dataclass
class LoadedPackage:
    """A published package bound to its handler modules."""

    package_id: str
    name: str
    modules: tuple[MoveModule, ...]
    scope: TypeScope

    def module(self, name: str) -> MoveModule | None:
        return next((m for m in self.modules if m.name == name), None)

    def qualified(self, text: str) -> MoveType:
        return self.scope.qualify(parse_type(text))


def _scope(package_id: str, modules: tuple[MoveModule, ...]) -> TypeScope:
    structs = {name: m.name for m in modules for name in (*m.structs, *m.events)}
    return TypeScope(package_id, structs)


def load(package_id: str, name: str, nitro_root: x509.Certificate | None) -> LoadedPackage:
    """Bind a package id to the handler modules registered under ``name``."""
    package_id = normalize_address(package_id)
    if name == K3S_DAAS:
        modules = K3S_DAAS_MODULES
    elif name == "sui" and package_id == FRAMEWORK:
        modules = (nitro_attestation.module(nitro_root),)
    else:
        raise KeyError(f"no handler table for package {name!r}")
    return LoadedPackage(package_id, name, modules, _scope(package_id, modules))


def layouts_for(packages: list[LoadedPackage]) -> Layouts:
    """Qualified struct/event layouts of the framework and every loaded package."""
    framework_scope = TypeScope(FRAMEWORK, {})
    result: Layouts = {
        name: [(f, framework_scope.qualify(parse_type(t))) for f, t in fields]
        for name, fields in _FRAMEWORK_LAYOUTS.items()
    }
    for pkg in packages:
        for mod in pkg.modules:
            for sname, fields in {**mod.structs, **mod.events}.items():
                if "<" in sname:
                    continue  # generic, never stored or emitted on its own (IntentMessage<P>)
                result[f"{pkg.package_id}::{mod.name}::{sname}"] = [(f, pkg.qualified(t)) for f, t in fields]
    return result
