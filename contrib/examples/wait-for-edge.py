#!/usr/bin/env python3
"""Wait for edges on a sysfs GPIO line the classic way: poll() for POLLPRI
on `value`, then re-read it from offset 0 (which re-arms the poll).

Works unchanged on the kernel's /sys/class/gpio and on gpiofs; with gpiofs
any number of copies can watch the same line at once.

    wait-for-edge.py [--class-dir /sys/class/gpio] GPIO [rising|falling|both]
"""
import argparse
import os
import select
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("gpio", type=int)
parser.add_argument("edge", nargs="?", default="both")
parser.add_argument("--class-dir", default="/sys/class/gpio")
args = parser.parse_args()

line = os.path.join(args.class_dir, f"gpio{args.gpio}")
if not os.path.isdir(line):
    with open(os.path.join(args.class_dir, "export"), "w") as f:
        f.write(str(args.gpio))
with open(os.path.join(line, "edge"), "w") as f:
    f.write(args.edge)

fd = os.open(os.path.join(line, "value"), os.O_RDONLY)
poller = select.poll()
poller.register(fd, select.POLLPRI | select.POLLERR)
os.pread(fd, 8, 0)  # the first poll after open returns at once: consume it
while True:
    poller.poll()
    value = os.pread(fd, 8, 0).decode().strip()
    print(f"{time.monotonic():.6f} gpio{args.gpio} = {value}", flush=True)
