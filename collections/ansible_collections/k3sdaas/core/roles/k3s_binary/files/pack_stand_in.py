"""Packs the stand-in K3s agent for role k3s_binary (simulated hosts): run by the controller's Python.

Writes the tar named by argv[1] with k3sdaas_localnet/__init__.py, k3sdaas_localnet/k3s/*.py and PyYAML's
pure-Python yaml/*.py, owned by root with fixed modes but the sources' times, so that unarchive's
comparison finds an unchanged stand-in unchanged.
"""

import os
import sys
import tarfile

import yaml

import k3sdaas_localnet
import k3sdaas_localnet.k3s


def normalize(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644
    return info


def members():
    yield os.path.join(os.path.dirname(k3sdaas_localnet.__file__), "__init__.py"), "k3sdaas_localnet/__init__.py"
    for name, module in (("k3sdaas_localnet/k3s", k3sdaas_localnet.k3s), ("yaml", yaml)):
        source = os.path.dirname(module.__file__)
        for entry in sorted(os.listdir(source)):
            if entry.endswith(".py"):
                yield os.path.join(source, entry), name + "/" + entry


def main():
    os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
    with tarfile.open(sys.argv[1], "w") as archive:
        for path, name in members():
            archive.add(path, arcname=name, filter=normalize)


if __name__ == "__main__":
    main()
