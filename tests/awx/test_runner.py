"""Job templates run the way AWX runs them: ansible-runner on a private data dir laid out as AWX's task
runner lays it out (project/, inventory/hosts as an inventory script, env/extravars from the survey
answers with AWX's !unsafe marking, the "Sui wallet" credential's files rendered into env/ and its env
vars passed as envvars), against the local Sui node. The key must not appear in any artifact."""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import ansible_runner
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from helpers.playbook import REPO, VENV_BIN

SUI_STATE = REPO / ".state" / "sui"
CREDENTIAL_TYPE = yaml.safe_load((REPO / "awx/credential_types/sui_wallet.yml").read_text())


class Unsafe(str):
    """A string AWX writes as `!unsafe`: extra vars are data, never templates."""


yaml.SafeDumper.add_representer(Unsafe, lambda dumper, data: dumper.represent_scalar("!unsafe", str(data)))


def unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {key: unsafe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unsafe(item) for item in value]
    return value


def answer_set(survey: dict[str, Any]) -> dict[str, Any]:
    """A launch that answers only the required questions without a default (any valid answer)."""
    answers: dict[str, Any] = {}
    for question in survey["spec"]:
        if question["required"] and "default" not in question:
            answers[question["variable"]] = question["choices"][0] if "choices" in question else (
                1 if question["type"] in ("integer", "float") else "answer")
    return answers


def valid(question: dict[str, Any], value: Any) -> bool:
    """AWX's check of one answer (awx/main/models/mixins.py, _survey_element_validation)."""
    kind = question["type"]
    if kind in ("text", "textarea", "password"):
        return isinstance(value, str) and question.get("min", 0) <= len(value) <= question.get("max", len(value))
    if kind == "integer":
        return type(value) is int
    if kind == "float":
        return type(value) in (int, float)
    if kind == "multiselect":
        return isinstance(value, list) and all(item in question["choices"] for item in value)
    return value in question["choices"]


def survey_extra_vars(survey: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The extra vars AWX makes of a launch: each valid default, then the answers, which must be valid;
    a required question needs an answer or a default."""
    extra: dict[str, Any] = {}
    for question in survey["spec"]:
        name = question["variable"]
        if name in answers:
            assert valid(question, answers[name]), f"survey: {name}={answers[name]!r} refused"
            extra[name] = answers[name]
        elif "default" in question and valid(question, question["default"]):
            extra[name] = question["default"]
        else:
            assert not question["required"], f"survey: {name} is required"
    return extra


def inject(private_data_dir: Path, inputs: dict[str, str]) -> dict[str, str]:
    """The credential type's injectors as AWX applies them: each file template rendered into a 0600 file
    in env/, its path in `tower.filename.<name>`, then the env templates; returns the env vars."""
    sandbox = ImmutableSandboxedEnvironment()
    filename = SimpleNamespace()
    for label, template in CREDENTIAL_TYPE["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=private_data_dir / "env")
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**inputs))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        setattr(filename, label.split(".")[1], path)
    namespace = {**inputs, "tower": SimpleNamespace(filename=filename)}
    assert "extra_vars" not in CREDENTIAL_TYPE["injectors"]
    return {name: sandbox.from_string(template).render(**namespace)
            for name, template in CREDENTIAL_TYPE["injectors"]["env"].items()}


def awx_job(tmp_path: Path, playbook: str, extra_vars: dict[str, Any], credential: dict[str, str],
            cmdline: str | None = None, project: Path = REPO) -> tuple[ansible_runner.Runner, str]:
    private = tmp_path / "private"
    (private / "env").mkdir(parents=True)
    (private / "inventory").mkdir()
    (private / "project").symlink_to(project, target_is_directory=True)  # AWX copies the project checkout here
    # The job's AWX inventory: localhost with the EE's Python; the key and RPC URL come only from the
    # credential, never from inventory or extra vars.
    inventory = {
        "all": {"hosts": ["localhost"], "vars": {"k3sdaas_infrastructure": "local",
                                                  "k3sdaas_sui_build_output": str(SUI_STATE / "k3s_daas.build.json")}},
        "_meta": {"hostvars": {"localhost": {"ansible_connection": "local",
                                             "ansible_python_interpreter": sys.executable}}},
    }
    script = private / "inventory" / "hosts"
    script.write_text(f"#! {sys.executable}\nprint({json.dumps(json.dumps(inventory))})\n")
    script.chmod(0o700)
    job = {"awx_job_id": 14, "awx_job_template_name": playbook, "awx_user_name": "admin", **extra_vars}
    (private / "env" / "extravars").write_text(yaml.safe_dump(unsafe(job)))
    envvars = {
        **inject(private, credential),
        "JOB_ID": "14",
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_FORCE_COLOR": "False",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    runner = ansible_runner.run(private_data_dir=str(private), playbook=playbook, envvars=envvars, ident="14",
                                cmdline=cmdline, quiet=True,
                                suppress_env_files=True, timeout=600)
    return runner, runner.stdout.read()


def artifacts_text(runner: ansible_runner.Runner, stdout: str) -> str:
    """Everything the job left that AWX stores or shows: every artifact file and the job's output."""
    texts = [stdout]
    for path in Path(runner.config.artifact_dir).rglob("*"):
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


@pytest.fixture(scope="module")
def operator_key() -> str:
    key = SUI_STATE / "operator.key"
    if not key.is_file():
        pytest.fail(f"{key} missing: run scripts/setup.sh first (it starts the local Sui node)")
    return key.read_text().strip()


def sui_wallet(key: str) -> dict[str, str]:
    return {"sui_private_key": key, "sui_rpc_url": "https://127.0.0.1:9000",
            "sui_ca": (SUI_STATE / "tls" / "ca.pem").read_text()}


@pytest.mark.slow
def test_chain_lifecycle_runs_with_the_sui_wallet_credential(tmp_path: Path, operator_key: str) -> None:
    runner, stdout = awx_job(tmp_path, "playbooks/chain-lifecycle.yml", {}, sui_wallet(operator_key))
    assert (runner.status, runner.rc) == ("successful", 0), stdout
    assert runner.stats["failures"] == {} and "localhost" in runner.stats["ok"]
    tasks = {event["event_data"].get("task") for event in runner.events if event["event"] == "runner_on_ok"}
    assert {"Publish the k3s_daas package (once)", "Check the chain state the playbook left"} <= tasks
    events = list(Path(runner.config.artifact_dir, "job_events").glob("*.json"))
    assert len(events) > 10
    text = artifacts_text(runner, stdout)
    assert operator_key not in text
    assert operator_key.removeprefix("suiprivkey") not in text


def test_without_the_credential_the_modules_refuse(tmp_path: Path) -> None:
    """The key reaches the modules only through the credential: a wallet with no key file content fails."""
    runner, stdout = awx_job(tmp_path, "playbooks/chain-lifecycle.yml", {},
                             {"sui_private_key": "", "sui_rpc_url": "https://127.0.0.1:9000",
                              "sui_ca": (SUI_STATE / "tls" / "ca.pem").read_text()})
    assert runner.status == "failed", stdout
    assert "Publish the k3s_daas package (once)" in stdout


def test_the_artifact_scan_finds_a_key_a_playbook_prints(tmp_path: Path, operator_key: str) -> None:
    """The control for the checks above: the injected file holds the key, and a task that prints it is caught."""
    project = tmp_path / "project"
    project.mkdir()
    key_text = "lookup('ansible.builtin.file', lookup('ansible.builtin.env', 'SUI_KEY_FILE'))"
    (project / "leak.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.debug:\n        msg: \"{{{{ {key_text} }}}}\"\n")
    runner, stdout = awx_job(tmp_path / "job", "leak.yml", {}, sui_wallet(operator_key), project=project)
    assert runner.status == "successful", stdout
    assert operator_key in stdout
    events = Path(runner.config.artifact_dir, "job_events").glob("*.json")
    assert operator_key in "".join(path.read_text() for path in events)


def present_templates(surveys: ModuleType) -> list[Any]:
    return [t for t in surveys.templates() if t.survey_path.is_file()]


def test_every_present_job_template_passes_a_syntax_run(surveys: ModuleType, tmp_path: Path,
                                                         operator_key: str) -> None:
    templates = present_templates(surveys)
    assert templates, "no job template has its survey yet"
    for index, template in enumerate(templates):
        survey = json.loads(template.survey_path.read_text())
        runner, stdout = awx_job(tmp_path / str(index), template.playbook,
                                 survey_extra_vars(survey, answer_set(survey)),
                                 sui_wallet(operator_key), cmdline="--syntax-check")
        assert (template.playbook, runner.status) == (template.playbook, "successful"), stdout
        assert operator_key not in artifacts_text(runner, stdout)


def test_survey_answers_follow_awx_rules(surveys: ModuleType) -> None:
    survey = json.loads((REPO / "awx/surveys/deploy-all.json").read_text())
    assert "k3sdaas_infrastructure" not in survey_extra_vars(survey, {})  # empty optional choice: not passed
    assert survey_extra_vars(survey, {"k3sdaas_infrastructure": "aws"})["k3sdaas_infrastructure"] == "aws"
    with pytest.raises(AssertionError, match="refused"):
        survey_extra_vars(survey, {"k3sdaas_infrastructure": "gcp"})
