#!/usr/bin/env python3
"""Edge -> gpiozero callback latency on gpiofs --sim, with 1 and 8 gpiozero
processes on one pin (the gpiofs pin factory, contrib/gpiozero-gpiofs).

Each process has DigitalInputDevice(17) with when_activated and
when_deactivated callbacks that print the CLOCK_MONOTONIC time they run.
The bench makes an edge by writing the simulated line's pull (as
gpiofs-bench does natively), and the next edge once every process has
called back; per edge it takes the time from before the trigger write to
the first and to the last process's callback.

Run with a python that has gpiozero and the factory, e.g. the venv that
tests/gpiozero/run.sh makes:

    target/gpiozero-venv/bin/python contrib/bench/gpiozero_latency.py
"""

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABEL = 'pinctrl-bcm2711'
LINE = 17


def listen():
    from gpiozero import DigitalInputDevice

    def called(_=None):
        os.write(1, b'%d\n' % time.monotonic_ns())

    dev = DigitalInputDevice(LINE, pull_up=None, active_state=True)
    dev.when_activated = called
    dev.when_deactivated = called
    os.write(1, b'ready\n')
    sys.stdin.read()  # until the bench closes our stdin


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def run_row(mnt, processes, edges):
    env = dict(os.environ, GPIOZERO_PIN_FACTORY='gpiofs', GPIOFS_TREE=mnt,
               GPIOFS_PI_REVISION='c03114')
    procs = [subprocess.Popen([sys.executable, __file__, '--listen'], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for _ in range(processes)]
    try:
        for p in procs:
            if p.stdout.readline() != b'ready\n':
                raise RuntimeError('a listener did not start')
        pull = os.open(f'{mnt}/sim/{LABEL}/line{LINE}/pull', os.O_WRONLY)
        poller = select.poll()
        for p in procs:
            poller.register(p.stdout, select.POLLIN)
        by_fd = {p.stdout.fileno(): p for p in procs}
        first, last, missed = [], [], 0
        up = False
        for _ in range(edges):
            up = not up
            trigger = time.monotonic_ns()
            os.write(pull, b'pull-up' if up else b'pull-down')
            times = {}
            deadline = time.monotonic() + 1
            while len(times) < processes and time.monotonic() < deadline:
                for fd, _ in poller.poll(100):
                    times[fd] = int(by_fd[fd].stdout.readline())
            if len(times) < processes:
                missed += 1
                continue
            first.append((min(times.values()) - trigger) / 1000)
            last.append((max(times.values()) - trigger) / 1000)
            time.sleep(0.001)
        os.close(pull)
        return first, last, missed
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--listen', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--edges', type=int, default=1000)
    parser.add_argument('--processes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--gpiofs', default=str(ROOT / 'target/release/gpiofs'))
    args = parser.parse_args()
    if args.listen:
        return listen()
    with tempfile.TemporaryDirectory(prefix='gpiozero-latency-') as tmp:
        mnt = os.path.join(tmp, 'mnt')
        os.mkdir(mnt)
        daemon = subprocess.Popen([args.gpiofs, '--sim', f'{LABEL}:58', mnt],
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            while not os.path.exists(f'{mnt}/export'):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f'{args.gpiofs} did not mount')
                time.sleep(0.01)
            print(f'edge -> gpiozero callback, µs, {args.edges} edges per row '
                  f'(gpiofs --sim, DigitalInputDevice({LINE}) per process)')
            print(f'{"processes":>9}  {"first median":>12} {"first p99":>9}  '
                  f'{"last median":>11} {"last p99":>8}  missed')
            for n in args.processes:
                first, last, missed = run_row(mnt, n, args.edges)
                print(f'{n:>9}  {statistics.median(first):>12.0f} '
                      f'{percentile(first, 0.99):>9.0f}  '
                      f'{statistics.median(last):>11.0f} '
                      f'{percentile(last, 0.99):>8.0f}  {missed}', flush=True)
        finally:
            daemon.terminate()
            daemon.wait(5)
            subprocess.run(['umount', '-l', mnt], stderr=subprocess.DEVNULL)


if __name__ == '__main__':
    main()
