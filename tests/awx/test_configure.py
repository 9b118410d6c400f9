"""awx/configure.yml, the AWX configuration as code. No AWX runs here: the playbook must parse, and what
it would send (-e awx_render_to=FILE) is checked against the playbooks, the surveys and the inventory."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from helpers.playbook import REPO, run_playbook

CONFIGURE = REPO / "awx" / "configure.yml"
# The job templates the project offers (issue 14): deploy-all, each stage and the day-2 playbooks.
EXPECTED_PLAYBOOKS = {
    "deploy-all", "0-infrastructure", "1-sui-contracts-deploy", "2-ec2-worker-deploy", "3-nautilus-tee-deploy",
    "4-system-integration-test", "upgrade", "add-workers", "rotate-seal-tokens", "slash-recovery", "unstake",
    "teardown",
}


def render(tmp_path: Path, **extra_vars: Any) -> dict[str, Any]:
    out = tmp_path / "awx.json"
    done = run_playbook(CONFIGURE, extra_vars={"awx_render_to": str(out), **extra_vars}, json_report=False)
    assert done.returncode == 0, done.output
    rendered: dict[str, Any] = json.loads(out.read_text())
    return rendered


def present_templates(surveys: ModuleType) -> list[dict[str, str]]:
    return [{"name": t.name, "playbook": t.playbook} for t in surveys.templates() if (REPO / t.playbook).is_file()]


def test_configure_passes_syntax_check() -> None:
    done = run_playbook(CONFIGURE, "--syntax-check", json_report=False)
    assert done.returncode == 0, done.output


def test_job_templates_cover_the_project_playbooks(surveys: ModuleType) -> None:
    playbooks = [t.playbook for t in surveys.templates()]
    assert len(playbooks) == len(set(playbooks)) and len({t.name for t in surveys.templates()}) == len(playbooks)
    assert {Path(p).stem for p in playbooks} == EXPECTED_PLAYBOOKS
    assert all(p.startswith("playbooks/") for p in playbooks)
    # every project playbook that wraps a collection playbook is offered as a job template
    wrappers = {f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml")
                if "import_playbook: k3sdaas.core." in p.read_text()}
    assert wrappers <= set(playbooks)


def test_workflow_runs_the_stages_in_the_order_deploy_all_imports_them(surveys: ModuleType) -> None:
    stages = surveys.workflow_stages()
    assert set(stages) <= {t.playbook for t in surveys.templates()}
    missing = [s for s in stages if not (REPO / s).is_file()]
    assert missing == [], f"stage playbooks missing: {missing}"
    deploy_all = yaml.safe_load((surveys.SPECS.parent / "deploy_all.yml").read_text())
    imports = [play["ansible.builtin.import_playbook"] for play in deploy_all
               if "ansible.builtin.import_playbook" in play]
    assert imports, "deploy_all imports no stage playbooks"
    order = [name.removeprefix("k3sdaas.core.").removesuffix(".yml") for name in imports]
    assert [surveys.imported_playbook(REPO / s) for s in stages] == order


def test_rendered_configuration(surveys: ModuleType, tmp_path: Path) -> None:
    templates = present_templates(surveys)
    stages = [s for s in surveys.workflow_stages() if (REPO / s).is_file()]
    rendered = render(tmp_path, awx_job_templates=templates, awx_workflow_stages=stages)
    generated, _ = surveys.generate()
    assert rendered["surveys"] == {t["playbook"]: generated[REPO / "awx/surveys" / f"{Path(t['playbook']).stem}.json"]
                                   for t in templates}
    assert rendered["templates"] == {t["playbook"]: t["name"] for t in templates}
    assert rendered["workflow_nodes"] == [Path(s).stem for s in stages] + ["teardown"]
    # what the workflow's teardown node answers must pass the teardown survey (AWX refuses it otherwise)
    teardown = {q["variable"]: q for q in rendered["surveys"]["playbooks/teardown.yml"]["spec"]}
    for name, value in rendered["teardown_extra_data"].items():
        assert value in teardown[name]["choices"], (name, value)
    aws_ec2 = yaml.safe_load((REPO / "inventories/aws.example/aws_ec2.yml").read_text())
    assert aws_ec2.pop("plugin") == "amazon.aws.aws_ec2"
    assert rendered["inventory_source_vars"] == aws_ec2
    # the injectors reach AWX as AWX's own templates, not rendered (or emptied) by ansible-playbook
    credential_type = rendered["credential_type"]
    assert credential_type == yaml.safe_load((REPO / "awx/credential_types/sui_wallet.yml").read_text())


def test_sui_wallet_credential_type_injects_files_and_env_only() -> None:
    credential_type = yaml.safe_load((REPO / "awx/credential_types/sui_wallet.yml").read_text())
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert fields["sui_private_key"]["secret"] and fields["sui_private_key"]["multiline"]
    assert fields["sui_ca"]["multiline"] and "sui_ca" not in credential_type["inputs"]["required"]
    assert set(credential_type["inputs"]["required"]) == {"sui_private_key", "sui_rpc_url"}
    injectors = credential_type["injectors"]
    assert set(injectors) == {"file", "env"}, "a secret in extra_vars is stored and shown with the job"
    assert set(injectors["env"]) == {"SUI_KEY_FILE", "SUI_RPC_URL", "SUI_CA_FILE"}
    assert injectors["env"]["SUI_KEY_FILE"] == "{{ tower.filename.key }}"
    assert all("sui_private_key" not in template for template in injectors["env"].values())
