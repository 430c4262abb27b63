#!/usr/bin/env python3
"""Presses keys in a tmux pane and times each until the screen shows its effect: the view tabs
switch between Overview ("[1 Overview]") and Edges ("[2 Edges]"). Prints one line:

    presses N  median MS  p90 MS  worst MS  missed K

A press whose effect does not show within TIMEOUT seconds counts as missed (and as TIMEOUT).
The time includes tmux's own round trip (a capture every ~2 ms), which is about a millisecond.

    python3 scripts/lib/key-latency.py SOCKET TARGET [PRESSES] [TIMEOUT]
"""
import subprocess
import sys
import time

sock, target = sys.argv[1], sys.argv[2]
presses = int(sys.argv[3]) if len(sys.argv) > 3 else 20
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0


def tmux(*args):
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", target)


def wait_for(marker, limit):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if marker in screen():
            return True
        time.sleep(0.002)
    return False


# Start from Overview, drawn.
tmux("send-keys", "-t", target, "1")
if not wait_for("[1 Overview]", 60):
    sys.exit("key-latency: the dashboard never showed its Overview:\n" + screen())
times, missed = [], 0
for n in range(presses):
    key, marker = ("2", "[2 Edges]") if n % 2 == 0 else ("1", "[1 Overview]")
    time.sleep(0.3)  # keys arrive at a person's pace, at any moment of the refresh cycle
    start = time.monotonic()
    tmux("send-keys", "-t", target, key)
    if wait_for(marker, timeout):
        times.append((time.monotonic() - start) * 1000)
    else:
        missed += 1
        times.append(timeout * 1000)
times.sort()
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"presses {len(times)}  median {pick(0.5):.0f}  p90 {pick(0.9):.0f}  worst {times[-1]:.0f}  missed {missed}")
