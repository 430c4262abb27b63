#!/usr/bin/env python3
"""Which ELF sections of a running program's binary are resident, in kB (from /proc/PID/pagemap;
needs root). Shows where a sidecar's file-backed RSS goes: relocation tables, symbol tables,
text touched at start (inflated by the kernel's fault-around), read-only data.

    python3 scripts/lib/resident-sections.py PID [BINARY]     # BINARY: default /proc/PID/exe

The file-backed figure depends on the page cache's state (how the file was read in), so compare
two binaries in the same state, e.g. after `cat BINARY > /dev/null` for each.
"""
import collections
import os
import struct
import subprocess
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    binary = sys.argv[2] if len(sys.argv) > 2 else os.readlink(f"/proc/{pid}/exe")
    sections = []
    for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[0].startswith("[") and parts[1].startswith("."):
            address, size = int(parts[3], 16), int(parts[5], 16)
            if address:
                sections.append((address, address + size, parts[1]))
    real = os.path.realpath(binary)
    maps = [line.split() for line in open(f"/proc/{pid}/maps") if line.rstrip().endswith(real)]
    if not maps:
        sys.exit(f"resident-sections: {real} is not mapped by process {pid}")
    base = min(int(m[0].split("-")[0], 16) - int(m[2], 16) for m in maps)
    resident = collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for m in maps:
            start, end = (int(x, 16) for x in m[0].split("-"))
            for page in range(start, end, 4096):
                pagemap.seek(page // 4096 * 8)
                if not (struct.unpack("Q", pagemap.read(8))[0] >> 63) & 1:
                    continue
                offset = page - base
                name = next((n for lo, hi, n in sections if lo <= offset < hi), "(headers, gaps)")
                resident[name] += 4
    print(f"{sum(resident.values()):7d} kB resident from {real}")
    for name, kb in resident.most_common(20):
        print(f"{kb:7d} kB  {name}")


if __name__ == "__main__":
    main()
