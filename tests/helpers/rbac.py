"""The tier RBAC manifest as role nautilus_master renders it into the master image (its templates/rbac.yaml.j2)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import jinja2

ROLES = Path(__file__).resolve().parents[2] / "collections/ansible_collections/k3sdaas/core/roles"
TEMPLATES = ROLES / "nautilus_master/templates"
DEVELOPER_LABEL = "k3sdaas.io/developer=true"


def render_manifest(path: Path, namespaces: Sequence[str] = (), label: str = DEVELOPER_LABEL) -> str:
    """Writes the manifest to ``path`` and returns the path as text (what the master's config names)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    environment.filters["to_json"] = json.dumps  # Ansible's
    path.write_text(environment.get_template("rbac.yaml.j2").render(
        ansible_managed="rendered by the tests", nautilus_master_developer_namespaces=list(namespaces),
        nautilus_master_developer_namespace_label=label))
    return str(path)
