#!/usr/bin/env python3
"""Generate the AWX surveys from the playbooks' argument specs (one source of truth).

For every job template in awx/job_templates.yml, the project playbook's `import_playbook:
k3sdaas.core.<name>` names the collection playbook, whose inputs are in
collections/ansible_collections/k3sdaas/core/playbooks/specs/<name>.yml; the survey goes to
awx/surveys/<playbook stem>.json. A template whose playbook or spec does not exist yet is skipped
with a message.

    python awx/surveys.py           # write the surveys
    python awx/surveys.py --check   # exit 1 when a survey file differs from its spec
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
AWX = REPO / "awx"
SPECS = REPO / "collections/ansible_collections/k3sdaas/core/playbooks/specs"
SURVEYS = AWX / "surveys"
COLLECTION = "k3sdaas.core."
OPTION_KEYS = {"type", "required", "default", "choices", "description", "no_log", "elements"}
# Survey question types AWX accepts for each argument spec type (choices, bool and no_log are decided first).
PLAIN_TYPES = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float", "list": "textarea"}
# AWX's own limits for answers, as its survey editor sets them.
MAX_LENGTH = {"text": 1024, "password": 1024, "textarea": 4096}


class SpecError(Exception):
    """A spec AWX cannot ask for: the message names the file and the option."""


@dataclass(frozen=True)
class Template:
    name: str
    playbook: str

    @property
    def survey_path(self) -> Path:
        return SURVEYS / f"{Path(self.playbook).stem}.json"


def templates() -> list[Template]:
    data = yaml.safe_load((AWX / "job_templates.yml").read_text())
    return [Template(item["name"], item["playbook"]) for item in data["awx_job_templates"]]


def workflow_stages() -> list[str]:
    stages: list[str] = yaml.safe_load((AWX / "job_templates.yml").read_text())["awx_workflow_stages"]
    return stages


def imported_playbook(wrapper: Path) -> str:
    """The collection playbook a project playbook imports: `k3sdaas.core.deploy_all` -> `deploy_all`."""
    for play in yaml.safe_load(wrapper.read_text()) or []:
        target = play.get("ansible.builtin.import_playbook", play.get("import_playbook"))
        if isinstance(target, str) and target.startswith(COLLECTION):
            return target.removeprefix(COLLECTION)
    raise SpecError(f"{wrapper.relative_to(REPO)}: no `ansible.builtin.import_playbook: {COLLECTION}<name>`")


def spec_file(template: Template) -> Path:
    return SPECS / f"{imported_playbook(REPO / template.playbook)}.yml"


def question(where: str, name: str, option: dict[str, Any], bounds: list[int] | None = None) -> dict[str, Any]:
    unknown = set(option) - OPTION_KEYS
    if unknown:
        raise SpecError(f"{where}: option {name}: unknown keys {sorted(unknown)}")
    kind = option.get("type", "str")
    description = option.get("description", [])
    default = option.get("default")
    entry: dict[str, Any] = {
        "variable": name,
        "question_name": name,
        "question_description": " ".join(description) if isinstance(description, list) else str(description),
        "required": bool(option.get("required", False)),
    }
    if option.get("no_log"):
        # A secret never has a default in a survey: AWX would show it to everyone who can read the template.
        entry["type"] = "password"
        default = None
    elif "choices" in option:
        entry.update(type="multiselect" if kind == "list" else "multiplechoice",
                     choices=[str(choice) for choice in option["choices"]])
    elif kind == "bool":
        # AWX answers are strings: playbooks read them with `| bool`.
        entry.update(type="multiplechoice", choices=["true", "false"])
    elif kind in PLAIN_TYPES:
        entry["type"] = PLAIN_TYPES[kind]
    else:
        raise SpecError(f"{where}: option {name}: type {kind!r} has no AWX survey question type")
    # AWX passes a question's default as an extra var even when nobody answers; without one (no default,
    # or an empty list) an unanswered question leaves the playbook's own default alone.
    if default not in (None, []):
        if kind == "list":
            entry["default"] = "\n".join(str(item) for item in default)  # one item per line
        elif kind == "bool":
            entry["default"] = str(bool(default)).lower()
        elif "choices" in option:
            entry["default"] = str(default)
        else:
            entry["default"] = default
    if entry["type"] in MAX_LENGTH:
        entry.update(min=0, max=MAX_LENGTH[entry["type"]])
    if bounds is not None:  # the spec's `bounds`, which the playbook checks as well
        if kind != "int" or len(bounds) != 2 or not all(isinstance(b, int) for b in bounds):
            raise SpecError(f"{where}: bounds of {name}: [minimum, maximum] of an int option")
        entry.update(min=bounds[0], max=bounds[1])
    return entry


def survey(template: Template, spec_path: Path) -> dict[str, Any]:
    where = str(spec_path.relative_to(REPO))
    spec = yaml.safe_load(spec_path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("options"), dict):
        raise SpecError(f"{where}: needs a mapping `options` (role argument_spec option syntax)")
    return {
        "name": template.name,
        "description": spec.get("short_description", ""),
        "spec": [question(where, name, option or {}, (spec.get("bounds") or {}).get(name))
                 for name, option in spec["options"].items()],
    }


def generate() -> tuple[dict[Path, dict[str, Any]], list[str]]:
    """The survey of every template that has its playbook and spec, and why the others have none."""
    surveys: dict[Path, dict[str, Any]] = {}
    missing: list[str] = []
    for template in templates():
        if not (REPO / template.playbook).is_file():
            missing.append(f"{template.name}: no playbook {template.playbook}")
            continue
        path = spec_file(template)
        if not path.is_file():
            missing.append(f"{template.name}: no argument spec {path.relative_to(REPO)}")
            continue
        surveys[template.survey_path] = survey(template, path)
    return surveys, missing


def render(survey_data: dict[str, Any]) -> str:
    return json.dumps(survey_data, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a survey file is stale")
    args = parser.parse_args(argv)
    try:
        surveys, missing = generate()
    except (SpecError, OSError, yaml.YAMLError) as exc:
        print(f"surveys: {exc}", file=sys.stderr)
        return 1
    for reason in missing:
        print(f"skipped {reason}", file=sys.stderr)
    stale = sorted(path for path in SURVEYS.glob("*.json") if path not in surveys)
    if args.check:
        differ = [path for path, data in surveys.items() if not path.is_file() or path.read_text() != render(data)]
        for path in differ + stale:
            print(f"stale: {os.path.relpath(path, REPO)} (run python awx/surveys.py)", file=sys.stderr)
        return 1 if differ or stale else 0
    for path, data in surveys.items():
        path.write_text(render(data))
    for path in stale:
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
