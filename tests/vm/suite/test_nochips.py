#!/usr/bin/python3
"""gpiofs on a machine with no GPIO chip at all (runs INSIDE the VM): it must
fail at once, clearly, pointing at --sim, and leave nothing mounted.

usage: test_nochips.py WHEN   (WHEN names the moment, e.g. "at boot")"""

import glob
import os
import subprocess
import sys

from lib import GPIOFS, WORK, Checks, is_mounted, remove_all_sims

when = sys.argv[1] if len(sys.argv) > 1 else "now"
c = Checks("nochips")
remove_all_sims()
c.eq(f"{when}: no /dev/gpiochip* left", glob.glob("/dev/gpiochip*"), [])
mnt = os.path.join(WORK, "nochips")
os.makedirs(mnt, exist_ok=True)
try:
    r = subprocess.run([GPIOFS, mnt], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, NO_COLOR="1"))
    out = r.stdout + r.stderr
    c.check(f"{when}: gpiofs without chips exits non-zero", r.returncode != 0,
            f"exit {r.returncode}")
    c.check(f"{when}: its message mentions --sim", "--sim" in out, repr(out))
    c.check(f"{when}: its message says there is no GPIO chip", "no GPIO chip" in out
            or "no gpio chip" in out.lower(), repr(out))
except subprocess.TimeoutExpired:
    c.check(f"{when}: gpiofs without chips exits (it was still running after 30 s)", False)
c.check(f"{when}: nothing is left mounted", not is_mounted(mnt))
if is_mounted(mnt):
    subprocess.run(["umount", "-l", mnt], check=False)
c.finish()
