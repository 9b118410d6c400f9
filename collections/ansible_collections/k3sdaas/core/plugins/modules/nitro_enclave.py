#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nitro_enclave
version_added: 0.1.0
short_description: Build an enclave image (EIF) and run it as an AWS Nitro Enclave
description:
  - Builds an Enclave Image File from a local Docker image with C(nitro-cli build-enclave), and runs it with
    C(nitro-cli run-enclave) on a Nitro Enclaves parent instance.
  - Next to the EIF the module keeps a build record, O(eif_path) plus C(.json), with the Docker image ID the
    EIF was built from and its measurements. The EIF is rebuilt only when the image ID changed, the signing
    certificate changed, or the EIF no longer measures what its record says.
  - An enclave is identified by its name, O(enclave_name). It is left alone when it runs the EIF's measurements
    (PCR0, PCR1, PCR2 and, for a signed EIF, PCR8) with the asked CPU count, at least the asked memory, the same
    debug flag and, if given, the same CID; otherwise it is replaced, which means terminated and then started again.
  - Before building, terminating or starting anything, the request is checked against the allocator
    settings (O(allocator_file)), what other enclaves use, the host's CPU topology and the EIF's size, and
    refused with an error that names the option at fault.
  - O(nitro_cli) can point at any argv-compatible command, for example the k3sdaas nitro-cli simulator
    used for local and CI runs.
author:
  - K3s-DaaS engineers (@k3sdaas)
requirements:
  - the k3sdaas Python package on the managed host
  - nitro-cli (C(aws-nitro-enclaves-cli) and C(aws-nitro-enclaves-cli-devel)), or an argv-compatible stand-in
  - the docker CLI, when O(state=built) or O(state=running)
options:
  state:
    description:
      - V(built) makes sure O(eif_path) is an EIF of the current O(docker_uri) image; it does not start or stop
        enclaves.
      - V(running) does what V(built) does and makes sure an enclave named O(enclave_name) runs that EIF.
      - V(absent) terminates the enclave named O(enclave_name) and removes O(eif_path) and its build record.
    type: str
    choices: [built, running, absent]
    default: running
  docker_uri:
    description:
      - The local Docker image to build the EIF from, for example V(k3sdaas-enclave:latest).
      - The image must already exist on the host; the module does not pull. At most 512 bytes.
      - Required when O(state=built) or O(state=running).
    type: str
  eif_path:
    description:
      - Where the EIF is written. The build record is written to this path plus C(.json).
      - Its directory must exist, and an existing path must be a regular file.
    type: path
    required: true
  enclave_name:
    description:
      - Name of the enclave, its identity for this module.
      - Defaults to the file name of O(eif_path) without C(.eif), as nitro-cli does. 1 to 255 bytes.
    type: str
  cpu_count:
    description:
      - Number of vCPUs for the enclave.
      - On hosts with more than one hardware thread per core (Intel and AMD), enclaves take whole cores, so the
        count must be a multiple of the threads per core, that is even.
      - It must fit in the allocator's C(cpu_count) or C(cpu_pool), minus what other enclaves use.
      - At least 1 and at most 4294967295 (nitro-cli's u32).
    type: int
    default: 2
  memory_mib:
    description:
      - Memory for the enclave in MiB.
      - It must be at least 64 and at least 4 times the EIF's size, and fit in the allocator's C(memory_mib)
        minus what other enclaves use.
      - Required when O(state=running).
    type: int
  enclave_cid:
    description:
      - The vsock CID to give the enclave. Without it nitro-cli picks a free one.
      - CIDs 0 to 3 are reserved.
    type: int
  debug_mode:
    description:
      - Start the enclave in debug mode, which opens its console to the parent.
      - A debug-mode enclave's attestation documents carry all-zero PCR0, PCR1 and PCR2, so no verifier that
        checks measurements will trust it. Use it for development only.
    type: bool
    default: false
  allocator_file:
    description:
      - The Nitro Enclaves allocator settings the request is checked against.
      - When the file does not exist the module warns and leaves the checks to nitro-cli; when it exists it must
        be a regular file of at most 1 MiB.
    type: path
    default: /etc/nitro_enclaves/allocator.yaml
  nitro_cli:
    description:
      - The nitro-cli command, as a list of arguments or a string split like a shell would.
      - Its first element must be an executable found on E(PATH) or a path to one.
    type: raw
    default: [nitro-cli]
  signing_certificate:
    description:
      - PEM certificate to sign the EIF with, which adds PCR8 to its measurements. A regular file of at most 1 MiB.
      - A new certificate rebuilds the EIF and replaces a running enclave, whose PCR8 then differs.
    type: path
  private_key:
    description:
      - Private key (PEM file, checked like O(signing_certificate)) or KMS key ARN (V(arn:...)) matching
        O(signing_certificate).
    type: str
notes:
  - Lowering O(memory_mib) does not replace a running enclave, because nitro-cli may allocate more than asked.
  - The enclave is replaced when its image changes, so its CID and enclave ID change with it.
extends_documentation_fragment:
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_nitro
  - k3sdaas.core.attributes.check_mode_full
"""

EXAMPLES = r"""
- name: Build the master's enclave image
  k3sdaas.core.nitro_enclave:
    state: built
    docker_uri: k3sdaas-enclave:latest
    eif_path: /opt/k3sdaas/master.eif
  register: image

- name: Run the master enclave
  k3sdaas.core.nitro_enclave:
    state: running
    docker_uri: k3sdaas-enclave:latest
    eif_path: /opt/k3sdaas/master.eif
    enclave_name: k3sdaas-master
    cpu_count: 2
    memory_mib: 4096
    enclave_cid: 16
  register: master

- name: Show where the master listens and what it measures
  ansible.builtin.debug:
    msg: "CID {{ master.enclave.enclave_cid }}, PCR0 {{ master.pcrs.PCR0 }}"

- name: Run it against the local nitro-cli simulator
  k3sdaas.core.nitro_enclave:
    docker_uri: k3sdaas-enclave:latest
    eif_path: /tmp/master.eif
    memory_mib: 2048
    nitro_cli: ["{{ ansible_python_interpreter }}", -m, k3sdaas_localnet.nitro.cli]
  environment:
    K3SDAAS_NITRO_SIM_STATE: /tmp/nitro-sim

- name: Stop the master and remove its image
  k3sdaas.core.nitro_enclave:
    state: absent
    eif_path: /opt/k3sdaas/master.eif
    enclave_name: k3sdaas-master
"""

RETURN = r"""
actions:
  description: What the module did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [build, terminate, run]
build_reason:
  description: Why the EIF was (or would be) built; empty when it was current.
  returned: when O(state=built) or O(state=running)
  type: str
  sample: "image changed from sha256:5d5e... to sha256:7a1b..."
drift:
  description:
    - Why the enclave was (or would be) started or replaced; empty when it was left alone.
    - V(absent) means no enclave had the name; otherwise the differing fields, from V(PCR0), V(PCR1), V(PCR2),
      V(PCR8), V(state), V(cpu_count), V(memory_mib), V(debug_mode) and V(enclave_cid).
  returned: when O(state=running)
  type: list
  elements: str
  sample: [PCR0]
pcrs:
  description:
    - The EIF's measurements, PCR0, PCR1, PCR2 and, when signed, PCR8, as 96 lowercase hex digits.
    - Empty in check mode when the EIF would be rebuilt, and after O(state=absent).
  returned: always
  type: dict
  sample:
    PCR0: 49ac0d9697faa9721bdeedfcf359692b77e1987055d47242cfd731cbce1511bb717127ba3ec7615e0d13fccda20020d5
    PCR1: 0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa
    PCR2: 71fe86c32c2f7f6deaae5a096cb50d8ea216461d71b1fa7f5b45ee25b387f95bace57dc2ad02c132e9fc267992194ade
eif:
  description: The EIF and its build record after the run (the current one for O(state=absent)).
  returned: always
  type: dict
  contains:
    path:
      description: The EIF's path.
      type: str
    docker_uri:
      description: The image it was built from.
      type: str
    image_id:
      description: The Docker image ID it was built from.
      type: str
      sample: sha256:5d5eab013596bd8ff495d1dd161b248f3757a0a4a6523bd125e5f4efedc278f0
    size:
      description: The EIF's size in bytes.
      type: int
enclave:
  description:
    - The enclave named O(enclave_name) after the run; empty when none runs (or, for O(state=absent), the one
      that was terminated).
    - In check mode, when the enclave would be started, the values nitro-cli decides are null.
  returned: when O(state=running) or O(state=absent)
  type: dict
  contains:
    enclave_name:
      description: The enclave's name.
      type: str
      sample: k3sdaas-master
    enclave_id:
      description: The enclave ID, the parent's instance ID plus C(-enc) and a hex slot ID.
      type: str
      sample: i-085fa5ca0e3bda2cb-enc199a65df9f4c82b
    enclave_cid:
      description: The enclave's vsock CID.
      type: int
      sample: 16
    process_id:
      description: PID of the enclave's process on the parent.
      type: int
    cpu_count:
      description: Number of vCPUs.
      type: int
      sample: 2
    cpu_ids:
      description: The vCPUs given to the enclave.
      type: list
      elements: int
      sample: [1, 3]
    memory_mib:
      description: Memory actually allocated, in MiB; it may exceed the request.
      type: int
      sample: 4096
    state:
      description: The enclave's state as nitro-cli reports it.
      type: str
      sample: RUNNING
    debug_mode:
      description: Whether the enclave runs in debug mode.
      type: bool
    pcrs:
      description: The measurements nitro-cli reports for the enclave.
      type: dict
"""

import json
import os
from pathlib import Path

from ansible_collections.k3sdaas.core.plugins.module_utils.module import K3sdaasModule
from ansible_collections.k3sdaas.core.plugins.module_utils.nitro import (
    FIELD_BY_ERROR_CODE,
    MAX_CPU_COUNT,
    MAX_MEMORY_MIB,
    MIN_MEMORY_MIB,
    THREAD_SIBLINGS,
    NitroEnclaveError,
    build_reason,
    check_params,
    check_resources,
    command_argv,
    diff_view,
    enclave_drift,
    enclave_view,
    file_sha256,
    make_record,
    parse_allocator,
    pcrs,
    read_record,
    record_path,
    threads_per_core,
    write_record,
)

try:
    import yaml

    from k3sdaas.nitro.driver import NitroCli
    from k3sdaas.nitro.eif import EifError, read_eif
except ImportError:
    pass  # K3sdaasModule reports the missing runtime library

DEBUG_WARNING = (
    "debug_mode is true: this enclave's attestation documents carry all-zero PCR0, PCR1 and PCR2, so no verifier "
    "that checks measurements (workers, the on-chain registry) will trust it, and its console is open to the parent. "
    "Never use debug mode in production."
)


class EnclaveRun:
    """One invocation: the module, its nitro-cli, and what it has done so far."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.cli = NitroCli(command_argv(self.params["nitro_cli"]))
        self.eif_path = self.params["eif_path"]
        base = os.path.basename(self.eif_path)
        self.name = self.params["enclave_name"] or (base.removesuffix(".eif"))
        self.actions = []

    # -------------------------------------------------------------- reading state

    def image(self):
        """``docker image inspect`` of docker_uri; the module never pulls, so a missing image is an error."""
        docker = self.module.get_bin_path("docker", required=True)
        uri = self.params["docker_uri"]
        rc, out, err = self.module.run_command([docker, "image", "inspect", uri])
        if rc != 0:
            if "No such" in err:
                raise NitroEnclaveError(
                    f"docker_uri {uri} is not a local image; build or load it first (the module does not pull)",
                    "docker_uri",
                )
            raise NitroEnclaveError(f"docker image inspect {uri} failed: {err.strip()}", "docker_uri")
        return json.loads(out)[0]

    def eif(self):
        """The EIF's measurements, CRC state and size, or None when there is no readable EIF."""
        if not os.path.exists(self.eif_path):
            return None
        try:
            return read_eif_info(self.eif_path)
        except EifError:
            return None

    def allocator(self):
        path = self.params["allocator_file"]
        if not os.path.exists(path):
            self.module.warn(f"{path} does not exist: CPU and memory are not checked before nitro-cli runs")
            return None
        with open(path) as handle:
            try:
                config = yaml.safe_load(handle)
            except yaml.YAMLError as exc:
                raise NitroEnclaveError(f"{path} is not valid YAML: {exc}", "allocator_file") from None
        return parse_allocator(config, path)

    def enclaves(self):
        """describe-enclaves as (ours, others): the enclave named like ours, and everything else."""
        described = self.cli.describe_enclaves()
        views = [enclave_view(info.to_json()) for info in described]
        ours = [view for view in views if view["enclave_name"] == self.name]
        return (ours[0] if ours else None), [view for view in views if view["enclave_name"] != self.name]

    # -------------------------------------------------------------- acting

    def build(self, image_id, signing_digest):
        """Build into a temporary file first, so a failed build leaves the previous EIF in place."""
        self.actions.append("build")
        temporary = self.eif_path + ".partial.eif"
        try:
            self.cli.build_enclave(
                self.params["docker_uri"],
                temporary,
                signing_certificate=self.params["signing_certificate"],
                private_key=self.params["private_key"],
            )
        except Exception:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
        os.replace(temporary, self.eif_path)
        info = read_eif_info(self.eif_path)
        write_record(
            record_path(self.eif_path),
            make_record(self.params["docker_uri"], image_id, signing_digest, info["pcrs"], info["size"]),
        )
        return info

    def terminate(self, enclave):
        self.actions.append("terminate")
        if not self.module.check_mode:
            self.cli.terminate_enclave(enclave_id=enclave["enclave_id"])

    def start(self):
        self.actions.append("run")
        params = self.params
        self.cli.run_enclave(
            self.eif_path,
            params["memory_mib"],
            cpu_count=params["cpu_count"],
            enclave_cid=params["enclave_cid"],
            enclave_name=self.name,
            debug_mode=params["debug_mode"],
        )
        started, _others = self.enclaves()
        return started

    # -------------------------------------------------------------- states

    def ensure_built(self, with_resources, info):
        """Rebuild when needed; return (eif info or None in check mode, result fields). ``info`` is the EIF as
        read (``eif()``) at the start of this run: reading measures the whole file, so it is read once."""
        image = self.image()
        signing_digest = None
        if self.params["signing_certificate"]:
            signing_digest = file_sha256(self.params["signing_certificate"])
        reason = build_reason(
            read_record(record_path(self.eif_path)),
            image["Id"],
            signing_digest,
            info and info["pcrs"],
            bool(info and info["crc_ok"]),
        )
        if with_resources is not None:
            # Until it is built, the image's own size is a lower bound of the EIF's.
            with_resources(info["size"] if reason is None else image.get("Size"))
        if reason is not None and self.module.check_mode:
            self.actions.append("build")
            info = None
        elif reason is not None:
            info = self.build(image["Id"], signing_digest)
        fields = dict(
            build_reason=reason or "",
            eif=dict(
                path=self.eif_path,
                docker_uri=self.params["docker_uri"],
                image_id=image["Id"],
                size=info["size"] if info else None,
            ),
        )
        return info, fields

    def built(self):
        before = self.eif()
        info, fields = self.ensure_built(None, before)
        after_pcrs = info["pcrs"] if info else {}
        return dict(
            fields,
            pcrs=after_pcrs,
            diff=dict(before=dict(eif=before["pcrs"] if before else {}), after=dict(eif=after_pcrs)),
        )

    def running(self):
        params = self.params
        if params["debug_mode"]:
            self.module.warn(DEBUG_WARNING)
        current, others = self.enclaves()
        allocator = self.allocator()
        threads = threads_per_core(read_text(THREAD_SIBLINGS))

        def resources(eif_size):
            check_resources(
                params["cpu_count"],
                params["memory_mib"],
                allocator,
                [(view["memory_mib"], view["cpu_count"]) for view in others],
                threads,
                eif_size,
            )

        info, fields = self.ensure_built(resources, self.eif())
        wanted_pcrs = info["pcrs"] if info else None
        if info is not None and "build" in self.actions:
            resources(info["size"])  # the exact EIF size is known only now
        drift = (
            ["absent"]
            if current is None
            else enclave_drift(
                current,
                wanted_pcrs,
                params["cpu_count"],
                params["memory_mib"],
                params["debug_mode"],
                params["enclave_cid"],
            )
        )
        after = current
        if drift:
            if current is not None:
                self.terminate(current)
            if self.module.check_mode:
                self.actions.append("run")
                after = dict(
                    enclave_name=self.name,
                    enclave_id=None,
                    enclave_cid=params["enclave_cid"],
                    process_id=None,
                    cpu_count=params["cpu_count"],
                    cpu_ids=[],
                    memory_mib=params["memory_mib"],
                    state="RUNNING",
                    debug_mode=params["debug_mode"],
                    pcrs=wanted_pcrs or {},
                )
            else:
                after = self.start()
        return dict(
            fields,
            pcrs=wanted_pcrs or {},
            enclave=after or {},
            drift=drift,
            diff=dict(before=diff_view(current), after=diff_view(after)),
        )

    def absent(self):
        current, _others = self.enclaves()
        if current is not None:
            self.terminate(current)
        info = self.eif()
        present = [path for path in (self.eif_path, record_path(self.eif_path)) if os.path.exists(path)]
        if present:
            self.actions.append("remove")
            if not self.module.check_mode:
                for path in present:
                    os.remove(path)
        return dict(
            pcrs={},
            enclave=current or {},
            eif=dict(path=self.eif_path, size=info["size"] if info else None),
            diff=dict(before=diff_view(current), after={}),
        )


def read_eif_info(path):
    info = read_eif(Path(path))
    return dict(pcrs=pcrs(info.measurements.as_nitro_cli()), crc_ok=info.crc_ok, size=info.file_size)


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def main():
    module = K3sdaasModule(
        argument_spec=dict(
            state=dict(type="str", choices=["built", "running", "absent"], default="running"),
            docker_uri=dict(type="str"),
            eif_path=dict(type="path", required=True),
            enclave_name=dict(type="str"),
            cpu_count=dict(type="int", default=2),
            memory_mib=dict(type="int"),
            enclave_cid=dict(type="int"),
            debug_mode=dict(type="bool", default=False),
            allocator_file=dict(type="path", default="/etc/nitro_enclaves/allocator.yaml"),
            nitro_cli=dict(type="raw", default=["nitro-cli"]),
            signing_certificate=dict(type="path"),
            private_key=dict(type="str", no_log=True),
        ),
        required_if=[
            ["state", "built", ["docker_uri"]],
            ["state", "running", ["docker_uri", "memory_mib"]],
        ],
        required_together=[["signing_certificate", "private_key"]],
        ranges=dict(cpu_count=(1, MAX_CPU_COUNT), memory_mib=(MIN_MEMORY_MIB, MAX_MEMORY_MIB)),
    )
    module.guarded(check_params, module.params)
    run = module.guarded(EnclaveRun, module)
    try:
        state = module.params["state"]
        result = run.running() if state == "running" else run.built() if state == "built" else run.absent()
    except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught
        if getattr(exc, "field", None) is None and getattr(exc, "code", None) in FIELD_BY_ERROR_CODE:
            exc.field = FIELD_BY_ERROR_CODE[exc.code]  # a nitro-cli error code that points at one option
        module.fail_from_exception(exc, msg="failed after {}".format(", ".join(run.actions)) if run.actions else None)
    if not module.diff_mode:
        result.pop("diff")
    module.exit_json(changed=bool(run.actions), actions=run.actions, **result)


if __name__ == "__main__":
    main()
