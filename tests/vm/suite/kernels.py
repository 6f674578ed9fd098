#!/usr/bin/python3
"""The two kernels' own sysfs behaviour side by side (runs on the HOST after
both VM runs): every difference between the differential scenario's records
of Linux 6.12 and of trixie-backports' newest kernel must be listed in
kernel-differences.txt, which also says which of the two gpiofs follows.

usage: kernels.py OLD_kernel.json NEW_kernel.json OUT.txt
Prints ok/FAIL lines like the suite; OUT.txt gets every difference."""

import fnmatch
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import HERE, Checks, load_blocks  # noqa: E402

LIST = os.path.join(HERE, "kernel-differences.txt")
FIELDS = ("key", "old", "new", "gpiofs", "why")

c = Checks("kernels")


def main():
    old_path, new_path, out = sys.argv[1:4]
    entries = load_blocks(LIST, FIELDS, {"old": "*", "new": "*"})
    for e in entries:
        if e["gpiofs"] not in ("old", "new", "neither"):
            raise SystemExit(f"{e['line']}: 'gpiofs:' is old, new or neither, "
                             f"not {e['gpiofs']!r}")
        e["used"] = 0
    with open(old_path) as f:
        old = json.load(f)
    with open(new_path) as f:
        new = json.load(f)
    od, nd = dict(old), dict(new)
    keys = [k for k, _ in old] + [k for k, _ in new if k not in od]
    lines, unknown = [], 0
    for k in keys:
        ov, nv = od.get(k, "<absent>"), nd.get(k, "<absent>")
        if ov == nv:
            continue
        match = next((e for e in entries if fnmatch.fnmatchcase(k, e["key"])
                      and fnmatch.fnmatchcase(ov, e["old"])
                      and fnmatch.fnmatchcase(nv, e["new"])), None)
        if match:
            match["used"] += 1
            lines.append(f"known  {k}\n         6.12: {ov}\n         new:  {nv}\n"
                         f"         gpiofs follows: {match['gpiofs']}; {match['why']}")
        else:
            unknown += 1
            lines.append(f"NEW    {k}\n         6.12: {ov}\n         new:  {nv}")
            c.check(f"listed in kernel-differences.txt: {k}", False, f"6.12 {ov}, new {nv}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    c.note(f"{len(old)} records of 6.12, {len(new)} of the newest kernel; "
           f"{len(lines)} differences, {unknown} not listed (details: {out})")
    c.check(f"every difference between the kernels is in kernel-differences.txt "
            f"({unknown} are not)", unknown == 0)
    for e in entries:
        if not e["used"]:
            c.note(f"{e['line']}: entry {e['key']} matched nothing (gone? then drop it)")


c.run(main)
c.finish()
