#!/usr/bin/env python3
"""Reads callgrind profiles and prints every function that ran, by self cost (instructions),
hottest first, one linker symbol per line: an lld --symbol-ordering-file.

Usage: callgrind-order.py CALLGRIND.OUT…   (recorded with --demangle=no)
"""
import collections
import re
import sys

DEFINE = re.compile(r'c?fn=\((\d+)\)(?: (.*))?')


def self_costs(path, cost):
    names, current, skip_next = {}, None, False
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if skip_next:  # the line after calls= is the callee's inclusive cost, not this function's
                skip_next = False
                continue
            m = DEFINE.match(line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith('fn='):
                    current = names.get(m.group(1))
                    cost.setdefault(current, 0)
                continue
            if line.startswith('calls='):
                skip_next = True
                continue
            if current and line[:1] in '0123456789+-*':
                fields = line.split()
                if len(fields) >= 2 and fields[1].isdigit():
                    cost[current] += int(fields[1])


def main(paths):
    if not paths:
        sys.exit(__doc__)
    cost = collections.Counter()
    for path in paths:
        self_costs(path, cost)
    for name, _ in cost.most_common():
        # callgrind's own labels (addresses, "name'2" for a recursion level) are not symbols.
        if name and not name.startswith('0x') and ' ' not in name and "'" not in name:
            print(name)


if __name__ == '__main__':
    main(sys.argv[1:])
