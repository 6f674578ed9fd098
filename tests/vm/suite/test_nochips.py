#!/usr/bin/python3
"""gpiofs on a machine with no GPIO chip at all (runs INSIDE the VM), as a
boot-time service started before the GPIO driver probes: it mounts an empty
tree (export and unexport only), logs one line saying it waits for
/dev/gpiochip* and pointing at --sim, and serves gpio-sim chips created
afterwards, through both sysfs ABIs, until they are removed again.

usage: test_nochips.py WHEN   (WHEN names the moment, e.g. "at boot")"""

import glob
import os
import sys

from lib import (WORK, Checks, Gpiofs, Sim, is_mounted, read_errno, remove_all_sims,
                 wait_for, write_errno)

APPEAR = 10.0  # seconds a chip may take to appear or vanish in the tree
WAITING = "no GPIO chips yet; waiting for /dev/gpiochip*"

when = sys.argv[1] if len(sys.argv) > 1 else "now"
c = Checks("nochips")


def main():
    remove_all_sims()
    c.eq(f"{when}: no /dev/gpiochip* left", glob.glob("/dev/gpiochip*"), [])
    mnt = os.path.join(WORK, "nochips")
    log = os.path.join(WORK, "nochips.log")
    if os.path.exists(log):  # the part runs twice: count this run's lines only
        os.unlink(log)
    fs = Gpiofs(mnt, log=log)
    try:
        fs.start()
    except RuntimeError as e:
        c.check(f"{when}: gpiofs mounts with no GPIO chip", False, str(e))
        return
    try:
        with_gpiofs(fs, mnt)
    finally:
        c.eq(f"{when}: gpiofs exits 0 on SIGTERM", fs.stop(), 0)
        c.check(f"{when}: nothing is left mounted", not is_mounted(mnt))


def with_gpiofs(fs, mnt):
    c.check(f"{when}: gpiofs mounts with no GPIO chip", is_mounted(mnt))
    c.eq(f"{when}: the tree holds export and unexport only", sorted(os.listdir(mnt)),
         ["export", "unexport"])
    c.errno_is(f"{when}: export with no chip is EINVAL", write_errno(f"{mnt}/export", "512"),
               22)
    log = fs.log()
    lines = [line for line in log.splitlines() if WAITING in line]
    c.eq(f"{when}: one log line says it waits for chips", len(lines), 1)
    c.check(f"{when}: that line points at --sim", any("--sim" in line for line in lines), log)

    sim = Sim("late", 8, ["late-0", "late-1"])
    base = sim.kernel_base()
    chipdir, cx = f"{mnt}/gpiochip{base}", f"{mnt}/chip{sim.chip[len('gpiochip'):]}"
    c.check(f"{when}: a chip created after mounting appears as gpiochip{base}",
            wait_for(lambda: os.path.isdir(chipdir), APPEAR), str(os.listdir(mnt)))
    c.eq(f"{when}: its label", read_errno(f"{chipdir}/label"), "late\n")
    c.errno_is(f"{when}: export a line of it", write_errno(f"{mnt}/export", str(base + 1)), 0)
    c.errno_is(f"{when}: drive it high",
               write_errno(f"{mnt}/gpio{base + 1}/direction", "high"), 0)
    c.eq(f"{when}: the chip sees the level", sim.value(1), "1")
    sim.pull(2, True)
    c.errno_is(f"{when}: export another through the per-chip ABI",
               write_errno(f"{cx}/export", "2"), 0)
    c.check(f"{when}: its input follows the pull",
            wait_for(lambda: read_errno(f"{cx}/gpio2/value") == "1\n", APPEAR))
    c.errno_is(f"{when}: unexport", write_errno(f"{mnt}/unexport", str(base + 1)), 0)
    sim.remove()
    c.check(f"{when}: the removed chip vanishes with its lines",
            wait_for(lambda: sorted(os.listdir(mnt)) == ["export", "unexport"], APPEAR),
            str(os.listdir(mnt)))
    c.check(f"{when}: gpiofs is still running", fs.alive())
    sim = Sim("late", 8)
    c.check(f"{when}: a chip created again appears again",
            wait_for(lambda: os.path.isdir(f"{mnt}/gpiochip{sim.kernel_base()}"), APPEAR))
    sim.remove()
    c.check(f"{when}: and vanishes again",
            wait_for(lambda: sorted(os.listdir(mnt)) == ["export", "unexport"], APPEAR))


c.run(main)
remove_all_sims()
c.finish()
