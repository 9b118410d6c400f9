"""The AWX surveys are generated from the playbooks' argument specs: a survey that differs from its
spec, a spec AWX cannot ask for, and a job template without its playbook or spec all fail here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from helpers.playbook import REPO


def test_survey_files_match_the_argument_specs(surveys: ModuleType) -> None:
    generated, _ = surveys.generate()
    assert generated, "no job template has both its playbook and its spec yet"
    for path, data in generated.items():
        assert path.is_file(), f"{path.relative_to(REPO)} missing: run python awx/surveys.py"
        assert json.loads(path.read_text()) == data, f"{path.relative_to(REPO)} differs from its spec"
    assert sorted(surveys.SURVEYS.glob("*.json")) == sorted(generated), "a survey file has no job template"


def test_every_job_template_has_its_playbook_and_spec(surveys: ModuleType) -> None:
    _, missing = surveys.generate()
    assert missing == [], "job templates that cannot get a survey yet:\n" + "\n".join(missing)


def test_check_mode_reports_a_stale_survey(surveys: ModuleType, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(surveys, "SURVEYS", tmp_path)
    assert surveys.main([]) == 0
    assert surveys.main(["--check"]) == 0
    deploy_all = tmp_path / "deploy-all.json"
    survey = json.loads(deploy_all.read_text())
    survey["spec"][0]["default"] = "aws"
    deploy_all.write_text(json.dumps(survey))
    (tmp_path / "gone.json").write_text("{}")
    assert surveys.main(["--check"]) == 1
    assert surveys.main([]) == 0 and not (tmp_path / "gone.json").exists()
    assert surveys.main(["--check"]) == 0


def test_check_runs_as_a_command() -> None:
    done = subprocess.run([sys.executable, "awx/surveys.py", "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "stale" not in done.stderr


def test_every_argument_spec_type_maps_to_a_question(surveys: ModuleType, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(surveys, "REPO", tmp_path)
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump({"short_description": "all types", "options": {
        "name": {"type": "str", "required": True, "description": ["A name.", "Second line."]},
        "count": {"type": "int", "default": 3, "description": "How many."},
        "ratio": {"type": "float", "default": 0.5},
        "enabled": {"type": "bool", "default": False},
        "tier": {"type": "str", "choices": ["viewer", "admin"], "default": "viewer"},
        "nodes": {"type": "list", "elements": "str", "default": ["a", "b"]},
        "none": {"type": "list", "elements": "str", "default": []},
        "empty": {"type": "str", "default": ""},
        "groups": {"type": "list", "elements": "str", "choices": ["x", "y", "z"], "default": ["x", "z"]},
        "token": {"type": "str", "no_log": True, "default": "not-in-the-survey"},
        "build": {"type": "path"},
    }}))
    result = surveys.survey(surveys.Template("T", "playbooks/t.yml"), spec)
    assert result["name"] == "T" and result["description"] == "all types"
    questions = {q["variable"]: q for q in result["spec"]}
    assert questions["name"] == {"variable": "name", "question_name": "name", "required": True, "type": "text",
                                 "question_description": "A name. Second line.", "min": 0, "max": 1024}
    assert (questions["count"]["type"], questions["count"]["default"]) == ("integer", 3)
    assert (questions["ratio"]["type"], questions["ratio"]["default"]) == ("float", 0.5)
    assert questions["enabled"]["type"] == "multiplechoice"
    assert (questions["enabled"]["choices"], questions["enabled"]["default"]) == (["true", "false"], "false")
    assert (questions["tier"]["type"], questions["tier"]["choices"]) == ("multiplechoice", ["viewer", "admin"])
    assert (questions["nodes"]["type"], questions["nodes"]["default"]) == ("textarea", "a\nb")
    assert (questions["groups"]["type"], questions["groups"]["default"]) == ("multiselect", "x\nz")
    assert questions["token"]["type"] == "password" and "default" not in questions["token"]
    assert questions["build"]["type"] == "text" and not questions["build"]["required"]
    # no default: AWX passes nothing unless answered, so the playbook's default stays
    assert "default" not in questions["build"] and "default" not in questions["none"]
    assert questions["empty"]["default"] == ""


@pytest.mark.parametrize(("option", "message"), [
    ({"type": "dict"}, "spec.yml: option bad: type 'dict' has no AWX survey question type"),
    ({"type": "str", "mandatory": True}, "spec.yml: option bad: unknown keys ['mandatory']"),
])
def test_a_spec_awx_cannot_ask_for_names_the_option(surveys: ModuleType, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     option: dict[str, object], message: str) -> None:
    monkeypatch.setattr(surveys, "REPO", tmp_path)
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump({"options": {"bad": option}}))
    with pytest.raises(surveys.SpecError, match=f"^{re.escape(message)}$"):
        surveys.survey(surveys.Template("T", "playbooks/t.yml"), spec)


def test_a_wrapper_that_imports_no_collection_playbook_is_refused(surveys: ModuleType, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(surveys, "REPO", tmp_path)
    wrapper = tmp_path / "site.yml"
    wrapper.write_text("- hosts: all\n  tasks: []\n")
    with pytest.raises(surveys.SpecError, match=r"^site.yml: no `ansible.builtin.import_playbook: k3sdaas.core.<n"):
        surveys.imported_playbook(wrapper)
