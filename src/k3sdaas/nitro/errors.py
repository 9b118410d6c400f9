"""nitro-cli's error codes: the message table, the stderr block it prints, and typed exceptions.

The exit status of a failing nitro-cli command is the E-number of the last error it reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from k3sdaas.errors import InvalidInput, K3sdaasError, NotFound, Unavailable

HELP_URL = "https://docs.aws.amazon.com/enclaves/latest/user/cli-errors.html#"
MISSING_INFO = "MISSING_INFO"

# (code, enum name, message); {0}, {1}, {2} are the error's additional-info arguments.
ERROR_TABLE: list[tuple[int, str, str]] = [
    (0, "UnspecifiedError", "Unspecified error. This is used as a catch-all error and should not be used in the code."),
    (1, "MissingArgument", "Missing mandatory argument. User did not provide the `{0}` argument."),
    (2, "ConflictingArgument", "Conflicting arguments. User provided both `{0}` and `{1}`."),
    (3, "InvalidArgument", "Invalid argument provided. The parameter `{0}` is not a valid integer (`{1}`)"),
    (
        4,
        "SocketPairCreationFailure",
        "Socket pair creation failure. Such error appears when the Nitro CLI process attempts to open a stream pair in order to send a command to the enclave process but the stream initialization fails.",
    ),
    (
        5,
        "ProcessSpawnFailure",
        "Process spawn failure. Such error appears when the main Nitro CLI process fails to spawn the enclave process, in order to complete a `run-enclave` command.",
    ),
    (
        6,
        "DaemonizeProcessFailure",
        "Daemonize process failure. Such error appears when the system fails to daemonize a newly spawned enclave process.",
    ),
    (
        7,
        "ReadFromDiskFailure",
        "Read from disk failure. Such error appears when the Nitro CLI process fails to read the content of the enclave sockets directory (usually '/run/nitro_enclaves/') in order to perform a `describe-enclave` operation. Check that the directory exists and it has proper permissions, or run the Nitro Enclaves configuration script in order to (re)configure the environment.",
    ),
    (
        8,
        "UnusableConnectionError",
        "Unusable connection error. Such error appears when the Nitro CLI process attempts to open a connection to a non-existing or previously closed enclave descriptor",
    ),
    (
        9,
        "SocketCloseError",
        "Socket close error. Such error appears when the system fails to successfully close a communication channel.",
    ),
    (
        10,
        "SocketConnectTimeoutError",
        "Socket connect set timeout error. Such error appears when the system fails to configure a specific timeout for a given socket. May arise when trying to connect to an enclave's console.",
    ),
    (
        11,
        "SocketError",
        "Socket error. This is used as an error for catching any other socket operation errors not covered by previous custom errors.",
    ),
    (
        12,
        "EpollError",
        "Epoll error. Such error appears, for instance, when the system fails to register a specific enclave descriptor with epoll in order to monitor events for it.",
    ),
    (
        13,
        "InotifyError",
        "Inotify error. Such error appears when the system fails to configure a socket for monitorization.",
    ),
    (
        14,
        "InvalidCommand",
        "Invalid command. Such error appears when an unknown command and / or unknown arguments are sent through a socket.",
    ),
    (
        15,
        "LockAcquireFailure",
        "Lock acquire failure. Such error appears when the system fails to obtain the lock for an object with concurrent access, such as a structure containing information about a running enclave.",
    ),
    (
        16,
        "ThreadJoinFailure",
        "Thread join failure. Such error appears when the system fails to successfully join a thread, after it finished executing.",
    ),
    (17, "SerdeError", "Serde error. Such error appears when serializing / deserializing a command or response fails."),
    (
        18,
        "FilePermissionsError",
        "File permissions error. Such error appears when a user other than the owner of the logging file (usually '/var/log/nitro_enclaves/nitro_enclaves.log') attempts to change the file permissions",
    ),
    (
        19,
        "FileOperationFailure",
        "File operation failure. Such error appears when the system fails to perform the requested file operations, such as opening the EIF file when launching an enclave, or seeking to a specific offset in the EIF file, or writing to the log file.",
    ),
    (
        20,
        "InvalidCpuConfiguration",
        "Invalid CPU configuration. User provided `{0}` contains same CPU(s) (CPU(s) {1}) multiple times.",
    ),
    (
        21,
        "NoSuchCpuAvailableInPool",
        "No such CPU available in the pool. User provided `{0}` contains CPU {1}, which is not available in the pool.\nYou can add a specific CPU to the CPU pool by editing the `cpu_pool` value from '/etc/nitro_enclaves/allocator.yaml' and then enable the nitro-enclaves-allocator.service.",
    ),
    (
        22,
        "InsufficientCpus",
        "Insufficient CPUs available in the pool. User provided `{0}` is {1}, which is more than the configured CPU pool size.\nYou can increase the CPU pool size by editing the `cpu_count` value from '/etc/nitro_enclaves/allocator.yaml' and then enable the nitro-enclaves-allocator.service.",
    ),
    (
        23,
        "MalformedCpuId",
        "Malformed CPU ID error. Such error appears when a `lscpu` line is malformed and reports an invalid online CPUs list.",
    ),
    (24, "CpuError", "CPU error. Such error appears when a CPU line interval is invalid (for instance, 0-3-7)"),
    (
        25,
        "NoSuchHugepageFlag",
        "No such hugepage flag error. Such error appears when the enclave process attempts to use an invalid hugepage size (size other than the known hugepage sizes) for initializing the enclave memory.",
    ),
    (
        26,
        "InsufficientMemoryRequested",
        "Insufficient memory requested. User provided `{0}` is {1} MB, but based on the EIF file size, the minimum memory should be {2} MB",
    ),
    (
        27,
        "InsufficientMemoryAvailable",
        "Insufficient memory available. User provided `{0}` is {1} MB, which is more than the available hugepage memory.\nYou can increase the available memory by editing the `memory_mib` value from '/etc/nitro_enclaves/allocator.yaml' and then restart the nitro-enclaves-allocator.service.",
    ),
    (
        28,
        "InvalidEnclaveFd",
        "Invalid enclave descriptor. Such error appears when the NE_CREATE_VM ioctl returns with an error.",
    ),
    (
        29,
        "IoctlFailure",
        "Ioctl failure. Such error is used as a general ioctl error and appears whenever an ioctl fails. In this case, the error backtrace provides detailed information on what specifically failed during the ioctl.",
    ),
    (
        30,
        "IoctlImageLoadInfoFailure",
        "Ioctl image get load info failure. Such error appears when the ioctl used for getting the memory load information fails. In this case, the error backtrace provides detailed information on what specifically failed during the ioctl.",
    ),
    (
        31,
        "IoctlSetMemoryRegionFailure",
        "Ioctl set memory region failure. Such error appears when the ioctl used for setting a given memory region fails. In this case, the error backtrace provides detailed information on what specifically failed during the ioctl.",
    ),
    (
        32,
        "IoctlAddVcpuFailure",
        "Ioctl add vCPU failure. Such error appears when the ioctl used for adding a vCPU fails. In this case, the error backtrace provides detailed information on what specifically failed during the ioctl.",
    ),
    (
        33,
        "IoctlEnclaveStartFailure",
        "Ioctl start enclave failure. Such error appears when the ioctl used for starting an enclave fails. In this case, the error backtrace provides details information on what specifically failed during the ioctl.",
    ),
    (
        34,
        "MemoryOverflow",
        "Memory overflow. Such error may appear during loading the EIF in the memory regions which will be conceded to the future enclave, if the regions offset plus the EIF file size exceeds the maximum address of the target platform.",
    ),
    (
        35,
        "EifParsingError",
        "EIF file parsing error. Such errors appear when attempting to fill a memory region with a section of the EIF file, but reading the entire section fails. This might indicate that the required hugepages are not available.",
    ),
    (
        36,
        "EnclaveBootFailure",
        "Enclave boot failure. Such error appears when attempting to receive the `ready` signal from a freshly booted enclave. It arises in several contexts, for instance, when the enclave is booted from an invalid EIF file and the enclave process immediately exits, failing to submit the `ready` signal. In this case, the error backtrace provides detailed information on what specifically failed during the enclave boot process.",
    ),
    (
        37,
        "EnclaveEventWaitError",
        "Enclave event wait error. Such error appears when monitoring an enclave descriptor for events fails.",
    ),
    (
        38,
        "EnclaveProcessCommandNotExecuted",
        "Enclave process command not executed error. Such error appears when at least one enclave fails to provide the description information.",
    ),
    (
        39,
        "EnclaveProcessConnectionFailure",
        "Enclave process connection failure. Such error appears when the enclave manager fails to connect to at least one enclave process for retrieving the description information.",
    ),
    (
        40,
        "SocketPathNotFound",
        "Socket path not found. Such error appears when the Nitro CLI process fails to build the corresponding socket path starting from a given enclave ID.",
    ),
    (
        41,
        "EnclaveProcessSendReplyFailure",
        "Enclave process send reply failure. Such error appears when the enclave process fails to submit the status code to the Nitro CLI process after performing a run / describe / terminate command.",
    ),
    (42, "EnclaveMmapError", "Enclave mmap error. Such error appears when allocating the enclave memory fails."),
    (43, "EnclaveMunmapError", "Enclave munmap error. Such error appears when unmapping the enclave memory fails."),
    (
        44,
        "EnclaveConsoleConnectionFailure",
        "Enclave console connection failure. Such error appears when the Nitro CLI process fails to establish a connection to a running enclave's console.",
    ),
    (
        45,
        "EnclaveConsoleReadError",
        "Enclave console read error. Such error appears when reading from a running enclave's console fails.",
    ),
    (
        46,
        "EnclaveConsoleWriteOutputError",
        "Enclave console write output error. Such error appears when writing the information retrieved from a running enclave's console (to a given stream) fails.",
    ),
    (
        47,
        "IntegerParsingError",
        "Integer parsing error. Such error appears when trying to connect to a running enclave's console, but the enclave CID cannot be parsed correctly.",
    ),
    (
        48,
        "EifBuildingError",
        "EIF building error. Such error appears when trying to build an EIF file. In this case, the error backtrace provides detailed information on the failure reason.",
    ),
    (
        49,
        "DockerImageBuildError",
        "Docker image build error. Such error appears when trying to build and EIF file, but building the corresponding docker image fails. In this case, the error backtrace provides detailed information on the failure reason.",
    ),
    (
        50,
        "DockerImagePullError",
        "Docker image pull error. Such error appears when trying to build an EIF file, but pulling the corresponding docker image fails. In this case, the error backtrace provides detailed informatino on the failure reason.",
    ),
    (
        51,
        "ArtifactsPathNotSet",
        "Artifacts path environment variable not set. Such error appears when trying to build an EIF file, but the artifacts path environment variable is not set.",
    ),
    (
        52,
        "BlobsPathNotSet",
        "Blobs path environment variable not set. Such error appears when trying to build an EIF file, but the blobs path environment variable is not set.",
    ),
    (
        53,
        "ClockSkewError",
        "Clock skew error. Such error appears when continuously reading from a running enclave's console, but measuring the time elapsed between consecutive reads failed.",
    ),
    (
        54,
        "SignalMaskingError",
        "Signal masking error. Such error appears if attempting to mask specific signals before creating an enclave process fails.",
    ),
    (
        55,
        "SignalUnmaskingError",
        "Signal unmasking error. Such error appears if attempting to unmask specific signals after creating an enclave process fails.",
    ),
    (
        56,
        "LoggerError",
        "Logger error. Such error appears when attempting to initialize the underlying logging system fails.",
    ),
    (
        57,
        "HasherError",
        "Hasher error. Such error appears when trying to initialize a hasher or write bytes to it, resulting in a IO error.",
    ),
    (
        58,
        "EnclaveNamingError",
        "Naming error. Such error appears when trying to perform an enclave operation using the enclave name and the name is invalid.",
    ),
    (
        59,
        "EIFSignatureCheckerError",
        "EIF signature checker error. Such error appears when validation of the signing certificate fails.",
    ),
    (
        60,
        "EIFSigningError",
        "Signing error. Such error appears if incorrect key or certificate paths are provided, or when AWS credenrials need to be refreshed to use a KMS key.",
    ),
]
NAMES = {code: name for code, name, _ in ERROR_TABLE}
TEMPLATES = {code: template for code, _, template in ERROR_TABLE}
BLOCK_HEAD = re.compile(r"^\[ E(\d\d) \] (.*)$", re.MULTILINE)


def error_code(code: int) -> str:
    return f"E{code:02d}"


def error_message(code: int, args: Sequence[object] = ()) -> str:
    """The text after ``[ Exx ]``, with nitro-cli's argument-count variants and MISSING_INFO placeholders."""
    if code == 26 and len(args) < 3:
        template = (
            "Insufficient memory requested. User provided `{0}` is {1} MB, and memory should be greater than 0 MB."
        )
    else:
        template = TEMPLATES[code]
    filled = [str(arg) for arg in args] + [MISSING_INFO] * 3
    message = template.format(*filled)
    if code == 19 and len(args) >= 2:
        message += f"\nFile: '{args[0]}', failing operation: '{args[1]}'."
    return message


def error_block(code: int, args: Sequence[object], log_path: str) -> str:
    """Exactly what nitro-cli writes to stderr for one error (without BACKTRACE)."""
    return (
        f"[ {error_code(code)} ] {error_message(code, args)}\n\n"
        f"For more details, please visit {HELP_URL}{error_code(code)}\n\n"
        f'If you open a support ticket, please provide the error log found at "{log_path}"\n'
    )


class NitroCliError(K3sdaasError):
    """nitro-cli failed; ``code`` is the first (root-cause) E-number, ``codes`` all reported, in order."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        codes: Sequence[int] = (),
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        super().__init__(f"[ {error_code(code)} ] {message}")
        self.code = code
        self.name = NAMES.get(code, "Unknown")
        self.codes = list(codes) or [code]
        self.exit_code = exit_code if exit_code is not None else code
        self.stdout = stdout
        self.stderr = stderr


class NitroCliArgumentError(NitroCliError, InvalidInput):
    """E01-E03: missing, conflicting or invalid arguments."""


class EnclaveNotFoundError(NitroCliError, NotFound):
    """E11/E40/E58: no enclave answers to that ID or name."""


class InsufficientResourcesError(NitroCliError):
    """E20-E22, E25-E27: the CPU pool or hugepage memory cannot hold the enclave."""


class EnclaveImageError(NitroCliError, InvalidInput):
    """E35/E48/E59/E60: the EIF cannot be parsed, built, signed or its signature checked."""


class EnclaveBootError(NitroCliError):
    """E36: the enclave did not send its ready heartbeat."""


class EnclaveProcessError(NitroCliError, Unavailable):
    """E38/E39: an enclave process could not be reached."""


class EnclaveConsoleError(NitroCliError):
    """E44-E47: console not available (e.g. the enclave is not in debug mode)."""


class DockerError(NitroCliError):
    """E49/E50: building or pulling the Docker image failed."""


_FAMILIES: dict[type[NitroCliError], tuple[int, ...]] = {
    NitroCliArgumentError: (1, 2, 3),
    EnclaveNotFoundError: (11, 40, 58),
    InsufficientResourcesError: (20, 21, 22, 25, 26, 27),
    EnclaveImageError: (35, 48, 59, 60),
    EnclaveBootError: (36,),
    EnclaveProcessError: (38, 39),
    EnclaveConsoleError: (44, 45, 46, 47),
    DockerError: (49, 50),
}
ERROR_CLASSES = {code: cls for cls, codes in _FAMILIES.items() for code in codes}


def parse_error_output(stderr: str, exit_code: int, stdout: str = "") -> NitroCliError:
    """Turn a failed run's stderr into the typed error of its first ``[ Exx ]`` block.

    A run-enclave failure reports the cause and then E39; the cause is what callers act on.
    """
    blocks = BLOCK_HEAD.findall(stderr)
    if not blocks:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {exit_code}"
        return NitroCliError(0, last, codes=[], exit_code=exit_code, stdout=stdout, stderr=stderr)
    codes = [int(code) for code, _ in blocks]
    cause = next((code for code in codes if code != 39), codes[0])
    message = next(text for code, text in blocks if int(code) == cause)
    cls = ERROR_CLASSES.get(cause, NitroCliError)
    return cls(cause, message, codes=codes, exit_code=exit_code, stdout=stdout, stderr=stderr)
