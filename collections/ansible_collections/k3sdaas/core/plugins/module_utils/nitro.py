# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions of the nitro_enclave module: option checks, resource limits, the EIF build record, enclave matching.

Nothing here runs a command, so every rule can be unit-tested without Docker or nitro-cli.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat

from ansible_collections.k3sdaas.core.plugins.module_utils.module import ModuleError

# nitro-cli refuses less than 4 x the EIF file size (E26); the Nitro driver needs at least 64 MiB.
EIF_MEMORY_FACTOR = 4
MIN_MEMORY_MIB = 64
MIB = 1 << 20
FIRST_ENCLAVE_CID = 4
MAX_CID = (1 << 32) - 1
PCR_NAMES = ("PCR0", "PCR1", "PCR2", "PCR8")
RECORD_SUFFIX = ".json"
THREAD_SIBLINGS = "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"
MAX_CPU_COUNT = (1 << 32) - 1  # nitro-cli's u32
MAX_MEMORY_MIB = ((1 << 64) - 1) >> 20  # nitro-cli's u64 of bytes
MAX_INPUT_FILE_BYTES = 1 << 20  # allocator.yaml, the signing certificate and key are a few KiB
MAX_DOCKER_URI_BYTES = 512  # a Docker reference: name up to 255 characters, tag up to 128, or a digest
MAX_ENCLAVE_NAME_BYTES = 255  # nitro-cli prints it in every describe-enclaves; kept to a file name's length
# nitro-cli error codes that point at one option (E20-E22 CPU pool, E26/E27 memory, E03 CID).
FIELD_BY_ERROR_CODE = {20: "cpu_count", 21: "cpu_count", 22: "cpu_count", 26: "memory_mib", 27: "memory_mib"}


class NitroEnclaveError(ModuleError):
    """A refusal the user can fix; ``field`` names the option at fault."""


def command_argv(nitro_cli):
    """The nitro_cli option as argv: a list as given, a string split like a shell would."""
    if isinstance(nitro_cli, (list, tuple)):
        argv = [str(part) for part in nitro_cli]
    elif isinstance(nitro_cli, str):
        try:
            argv = shlex.split(nitro_cli)
        except ValueError as exc:  # an unclosed quote
            raise NitroEnclaveError(f"nitro_cli {nitro_cli!r:.200} cannot be split: {exc}", "nitro_cli") from None
    else:
        raise NitroEnclaveError("nitro_cli must be a list of arguments or a string", "nitro_cli")
    if not argv or not argv[0]:
        raise NitroEnclaveError("nitro_cli is empty", "nitro_cli")
    return argv


def path_stat(path, option):
    """os.stat of a path option, None when it does not exist; a name too long or a loop is the option's fault."""
    if not path:
        raise NitroEnclaveError(f"{option} is empty", option)
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NitroEnclaveError(f"{option} {path!r:.200}: {exc.strerror}", option) from None


def check_file(path, option, required=True):
    """A file the module reads must be a regular file of bounded size (not a directory, FIFO or device)."""
    info = path_stat(path, option)
    if info is None and not required:
        return
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_INPUT_FILE_BYTES:
        raise NitroEnclaveError(
            f"{option} {path!r:.200} must be a regular file of at most {MAX_INPUT_FILE_BYTES} bytes",
            option,
        )


def check_text(value, option, max_bytes):
    if value is not None and (not value.strip() or len(value.encode("utf-8")) > max_bytes):
        raise NitroEnclaveError(f"{option} must be 1 to {max_bytes} bytes, not blank", option)


def check_params(params):
    """Refuse malformed options up front, whatever the state: nothing is read, built or started before."""
    check_cid(params["enclave_cid"])
    command = command_argv(params["nitro_cli"])[0]
    if shutil.which(command) is None:
        raise NitroEnclaveError(f"nitro_cli: command {command!r:.200} is not found", "nitro_cli")
    check_text(params["docker_uri"], "docker_uri", MAX_DOCKER_URI_BYTES)
    check_text(params["enclave_name"], "enclave_name", MAX_ENCLAVE_NAME_BYTES)
    eif_path = params["eif_path"]
    info = path_stat(eif_path, "eif_path")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise NitroEnclaveError(f"eif_path {eif_path!r:.200} must be a file path, not a directory", "eif_path")
    if not os.path.isdir(os.path.dirname(os.path.abspath(eif_path))):
        raise NitroEnclaveError(f"eif_path {eif_path!r:.200}: its directory does not exist", "eif_path")
    check_file(params["allocator_file"], "allocator_file", required=False)
    if params["signing_certificate"] is not None:
        check_file(params["signing_certificate"], "signing_certificate")
        key = params["private_key"]
        if not key.startswith("arn:"):  # a KMS key ARN is checked by nitro-cli and KMS
            check_file(key, "private_key")


def parse_cpu_list(text, field):
    """Linux CPU list syntax as in allocator.yaml's cpu_pool and sysfs, e.g. "2,3,6-9"."""
    cpus: set[int] = set()
    for part in str(text).split(","):
        low, _sep, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or (high and int(high) < int(low)):
            raise NitroEnclaveError(f"{field}: {str(text)!r} is not a CPU list like 2,3,6-9", field)
        cpus.update(range(int(low), int(high or low) + 1))
    return sorted(cpus)


def parse_allocator(config, path):
    """allocator.yaml's memory_mib and cpu_count or cpu_pool, as (memory_mib, cpu_count)."""
    if not isinstance(config, dict):
        raise NitroEnclaveError(f"{path} is not a YAML mapping", "allocator_file")
    if "cpu_count" in config and "cpu_pool" in config:
        raise NitroEnclaveError(f"{path}: cpu_count and cpu_pool conflict, use one", "allocator_file")
    try:
        memory = int(config["memory_mib"])
        cpus = (
            len(parse_cpu_list(config["cpu_pool"], "allocator_file"))
            if "cpu_pool" in config
            else int(config["cpu_count"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NitroEnclaveError(
            f"{path}: needs memory_mib and cpu_count (or cpu_pool): {exc}", "allocator_file"
        ) from None
    return memory, cpus


def threads_per_core(siblings_text):
    """How many hardware threads share a core; 1 when the sysfs topology is unknown."""
    if not siblings_text or not siblings_text.strip():
        return 1
    return max(1, len(parse_cpu_list(siblings_text.strip(), "thread_siblings_list")))


def minimum_memory_mib(eif_size):
    return max(MIN_MEMORY_MIB, -(-EIF_MEMORY_FACTOR * eif_size // MIB))


def check_resources(cpu_count, memory_mib, allocator=None, others=(), threads=1, eif_size=None):
    """Refuse what nitro-cli would refuse, before anything is built, terminated or started.

    ``allocator`` is (memory_mib, cpu_count) from allocator.yaml or None when there is none;
    ``others`` are the (memory_mib, cpu_count) of enclaves that keep running beside this one.
    """
    if cpu_count < 1:
        raise NitroEnclaveError(f"cpu_count must be at least 1, got {cpu_count}", "cpu_count")
    if threads > 1 and cpu_count % threads:
        raise NitroEnclaveError(
            f"cpu_count {cpu_count} is not a multiple of the {threads} threads per core of this host: "
            "Nitro Enclaves take whole cores, so use an even count",
            "cpu_count",
        )
    if memory_mib < MIN_MEMORY_MIB:
        raise NitroEnclaveError(
            f"memory_mib must be at least {MIN_MEMORY_MIB}, got {memory_mib}", "memory_mib"
        )
    if eif_size is not None and memory_mib < minimum_memory_mib(eif_size):
        raise NitroEnclaveError(
            f"memory_mib {memory_mib} is below what the image needs: nitro-cli requires 4 x the EIF size "
            f"({eif_size} bytes), at least {minimum_memory_mib(eif_size)} MiB",
            "memory_mib",
        )
    if allocator is None:
        return
    used_memory = sum(memory for memory, _cpus in others)
    used_cpus = sum(cpus for _memory, cpus in others)
    free_memory, free_cpus = allocator[0] - used_memory, allocator[1] - used_cpus
    if memory_mib > free_memory:
        raise NitroEnclaveError(
            f"memory_mib {memory_mib} exceeds the {free_memory} MiB the allocator has free "
            f"(memory_mib {allocator[0]} in allocator.yaml, {used_memory} MiB used by other enclaves)",
            "memory_mib",
        )
    if cpu_count > free_cpus:
        raise NitroEnclaveError(
            f"cpu_count {cpu_count} exceeds the {free_cpus} CPUs the allocator has free "
            f"({allocator[1]} in allocator.yaml, {used_cpus} used by other enclaves)",
            "cpu_count",
        )


def check_cid(cid):
    """0 is the hypervisor, 1 local, 2 reserved, 3 the parent; u32::MAX is "any"."""
    if cid is not None and not FIRST_ENCLAVE_CID <= cid < MAX_CID:
        raise NitroEnclaveError(
            f"enclave_cid {cid} is reserved: use {FIRST_ENCLAVE_CID} to {MAX_CID - 1}, or leave it out",
            "enclave_cid")


def pcrs(measurements):
    """The PCR values of a nitro-cli Measurements map, without HashAlgorithm."""
    return {name: value for name, value in (measurements or {}).items() if name in PCR_NAMES}


def record_path(eif_path):
    """The build record lives next to the EIF: what it was built from and what it measures."""
    return eif_path + RECORD_SUFFIX


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_record(docker_uri, image_id, signing_digest, measurements, eif_size):
    return {
        "docker_uri": docker_uri,
        "image_id": image_id,
        "signing_certificate_sha256": signing_digest,
        "measurements": pcrs(measurements),
        "eif_size": eif_size,
    }


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path, record):
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def build_reason(record, image_id, signing_digest, eif_pcrs, eif_crc_ok):
    """Why the EIF must be (re)built, or None when it is current for this image and signing key.

    ``eif_pcrs`` is None when there is no EIF; the EIF must still measure what its record says,
    so a replaced or corrupted file is rebuilt.
    """
    if eif_pcrs is None:
        return "no EIF at eif_path"
    if record is None:
        return "no build record next to the EIF"
    if record.get("image_id") != image_id:
        return "image changed from {} to {}".format(record.get("image_id"), image_id)
    if record.get("signing_certificate_sha256") != signing_digest:
        return "signing certificate changed"
    if not eif_crc_ok or record.get("measurements") != eif_pcrs:
        return "EIF does not match its build record"
    return None


def enclave_view(described):
    """One describe-enclaves entry in the module's return shape (snake_case)."""
    return {
        "enclave_name": described.get("EnclaveName"),
        "enclave_id": described["EnclaveID"],
        "enclave_cid": described["EnclaveCID"],
        "process_id": described.get("ProcessID"),
        "cpu_count": described["NumberOfCPUs"],
        "cpu_ids": list(described.get("CPUIDs") or []),
        "memory_mib": described["MemoryMiB"],
        "state": described.get("State"),
        "debug_mode": described.get("Flags") == "DEBUG_MODE",
        "pcrs": pcrs(described.get("Measurements")),
    }


def enclave_drift(enclave, wanted_pcrs, cpu_count, memory_mib, debug_mode, enclave_cid):
    """What differs between a running enclave and the wanted one; empty means leave it alone.

    Memory counts as matching when the enclave holds at least what is asked, because nitro-cli
    rounds the request up to hugepages.
    """
    # Every measured PCR counts: a new signing certificate changes PCR8 alone, and the enclave must then
    # run the re-signed EIF. Without an EIF yet (check mode before a build) the image counts as changed.
    if wanted_pcrs is None:
        drift = ["PCR0"]
    else:
        drift = [name for name in PCR_NAMES if enclave["pcrs"].get(name) != wanted_pcrs.get(name)]
    if enclave["state"] != "RUNNING":
        drift.append("state")
    if enclave["cpu_count"] != cpu_count:
        drift.append("cpu_count")
    if enclave["memory_mib"] < memory_mib:
        drift.append("memory_mib")
    if enclave["debug_mode"] != debug_mode:
        drift.append("debug_mode")
    if enclave_cid and enclave["enclave_cid"] != enclave_cid:
        drift.append("enclave_cid")
    return drift


def diff_view(enclave):
    """The part of an enclave a diff shows: PCRs, id, CPU and memory."""
    if not enclave:
        return {}
    keys = ("enclave_name", "enclave_id", "enclave_cid", "cpu_count", "memory_mib", "debug_mode", "pcrs")
    return {key: enclave.get(key) for key in keys}
