#!/usr/bin/python3
"""Differential test (runs INSIDE the VM): scenario.py against the kernel's
own /sys/class/gpio, then against gpiofs mounted on an identical fresh
gpio-sim chip (with --abi legacy where the kernel has no per-chip ABI, as
6.12); every difference of the two records must be listed in
known-differences.txt or in known-differences-<SERIES>.txt of the running
kernel (e.g. known-differences-6.12.txt), or it is a failure.

usage: diff.py   (records and the diff go to $GPIOFS_SUITE_ARTIFACTS, default target/vm-suite)
"""

import fnmatch
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (ARTIFACTS, HERE, PYTHON, WORK, Checks, Gpiofs, Sim, load_blocks,  # noqa: E402
                 remove_all_sims)

LABEL = "gpiodiff"
NAMES = ["", "diff-led", "diff-btn", "", "diff-4", "diff-5", "", "diff-7"]
SERIES = ".".join(os.uname().release.split(".")[:2])
ALLOW_FILES = [os.path.join(HERE, f) for f in
               ("known-differences.txt", f"known-differences-{SERIES}.txt")]

c = Checks("diff")


def load_allow():
    """Entries of the known-differences files: dicts with key, kernel,
    gpiofs, why."""
    entries = []
    for path in ALLOW_FILES:
        if os.path.exists(path):
            entries += load_allow_file(path)
    return entries


def load_allow_file(path):
    entries = load_blocks(path, ("key", "kernel", "gpiofs", "why"), {"kernel": "*", "gpiofs": "*"})
    for e in entries:
        e["used"] = 0
    return entries


def load_record(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def run_scenario(classdir, sim, out):
    cmd = [PYTHON, os.path.join(HERE, "scenario.py"), classdir, LABEL, sim.sysdir, out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0 or r.stderr.strip():
        c.note(f"scenario on {classdir} said (exit {r.returncode}):\n"
               + "\n".join("#   " + line for line in (r.stdout + r.stderr).splitlines()))
    return r.returncode == 0 and os.path.exists(out)


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    kout, gout = os.path.join(ARTIFACTS, "kernel.json"), os.path.join(ARTIFACTS, "gpiofs.json")
    for p in (kout, gout):
        if os.path.exists(p):
            os.unlink(p)
    entries = load_allow()
    remove_all_sims()

    sim = Sim(LABEL, len(NAMES), NAMES)
    c.note(f"kernel run: {sim.chip} ({sim.dev}), sysfs base {sim.kernel_base()}")
    c.check("scenario ran against the kernel's /sys/class/gpio",
            run_scenario("/sys/class/gpio", sim, kout))
    sim.remove()

    chip_abi = ["chipabi/present", "True"] in load_record(kout)
    sim = Sim(LABEL, len(NAMES), NAMES)
    mnt = os.path.join(WORK, "diffmnt")
    # --allow-other: so that access checks for other users compare
    fs = Gpiofs(mnt, "--allow-other", "--abi", "both" if chip_abi else "legacy")
    fs.start()
    c.note(f"gpiofs run: {sim.chip} ({sim.dev}), kernel base {sim.kernel_base()}, "
           f"--abi {'both' if chip_abi else 'legacy'}")
    ok = run_scenario(mnt, sim, gout)
    c.check("scenario ran against gpiofs", ok)
    c.check("gpiofs still running after the scenario", fs.alive())
    rc = fs.stop()
    c.eq("gpiofs exits 0 on SIGTERM", rc, 0)
    with open(os.path.join(ARTIFACTS, "gpiofs-diff.log"), "w") as f:
        f.write(fs.log())
    sim.remove()
    if not (os.path.exists(kout) and os.path.exists(gout)):
        return

    krec, grec = load_record(kout), load_record(gout)
    kd, gd = dict(krec), dict(grec)
    keys = [k for k, _ in krec] + [k for k, _ in grec if k not in kd]
    lines, unexpected = [], 0
    for k in keys:
        kv, gv = kd.get(k, "<absent>"), gd.get(k, "<absent>")
        if kv == gv:
            continue
        match = None
        for e in entries:
            if (fnmatch.fnmatchcase(k, e["key"]) and fnmatch.fnmatchcase(kv, e["kernel"])
                    and fnmatch.fnmatchcase(gv, e["gpiofs"])):
                match = e
                break
        if match:
            match["used"] += 1
            lines.append(f"known  {k}\n         kernel: {kv}\n         gpiofs: {gv}\n"
                         f"         why: {match['why']}")
        else:
            unexpected += 1
            lines.append(f"NEW    {k}\n         kernel: {kv}\n         gpiofs: {gv}")
            c.check(f"same as the kernel: {k}", False, f"kernel {kv}, gpiofs {gv}")
    with open(os.path.join(ARTIFACTS, "diff.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    known = sum(e["used"] for e in entries)
    c.note(f"{len(krec)} kernel records, {len(grec)} gpiofs records, "
           f"{known} known differences, {unexpected} new ones (details: {ARTIFACTS}/diff.txt)")
    c.check(f"every difference from the kernel is in known-differences.txt ({unexpected} are not)",
            unexpected == 0)
    for e in entries:
        if not e["used"]:
            c.note(f"{e['line']}: entry {e['key']} matched nothing "
                   f"(fixed? then drop it)")


c.run(main)
remove_all_sims()
c.finish()
