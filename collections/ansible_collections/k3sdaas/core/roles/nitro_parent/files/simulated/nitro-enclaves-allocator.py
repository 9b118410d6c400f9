"""SIMULATED nitro-enclaves-allocator (k3sdaas.core.nitro_parent, nitro_parent_simulated: true).

The real allocator reserves hugepages and offlines CPUs for enclaves; a host without Nitro hardware
has neither. This stand-in reads /etc/nitro_enclaves/allocator.yaml the same way, refuses the same
mistakes (missing memory_mib, both or neither of cpu_count and cpu_pool), and records what it would
have reserved in /run/nitro_enclaves/simulated-allocation.json. Exit 0 on success, 1 on a bad file.
"""

import json
import re
import sys

CONFIG = "/etc/nitro_enclaves/allocator.yaml"
RECORD = "/run/nitro_enclaves/simulated-allocation.json"
CPU_POOL = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$")


def read_settings(path):
    settings = {}
    with open(path, encoding="utf-8") as config:
        for line in config:
            line = line.split("#", 1)[0].strip()
            if line and line != "---" and ":" in line:
                key, value = line.split(":", 1)
                settings[key.strip()] = value.strip()
    return settings


def allocation(settings):
    memory = settings.get("memory_mib", "")
    if not memory.isdigit() or int(memory) < 64:
        raise ValueError(f"memory_mib must be an integer of at least 64, got '{memory}'")
    if ("cpu_count" in settings) == ("cpu_pool" in settings):
        raise ValueError("exactly one of cpu_count and cpu_pool must be set")
    if "cpu_count" in settings:
        count = settings["cpu_count"]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"cpu_count must be a positive integer, got '{count}'")
        return {"memory_mib": int(memory), "cpu_count": int(count)}
    if not CPU_POOL.match(settings["cpu_pool"]):
        raise ValueError(f"cpu_pool must be a CPU list like 2,3,6-9, got '{settings['cpu_pool']}'")
    return {"memory_mib": int(memory), "cpu_pool": settings["cpu_pool"]}


def main():
    try:
        reserved = allocation(read_settings(CONFIG))
    except (OSError, ValueError) as error:
        print(f"[simulated] nitro-enclaves-allocator: {CONFIG}: {error}", file=sys.stderr)
        return 1
    with open(RECORD, "w", encoding="utf-8") as record:
        json.dump(dict(reserved, simulated=True), record)
        record.write("\n")
    print(f"[simulated] nitro-enclaves-allocator: would reserve {json.dumps(reserved, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
