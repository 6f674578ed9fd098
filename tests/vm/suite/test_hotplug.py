#!/usr/bin/python3
"""Hot-plug (runs INSIDE the VM): gpio-sim chips created and removed while
gpiofs is mounted appear and vanish in the tree; open files of a vanished
line fail the way the kernel's do; gpiofs stays up; a re-created chip is
usable again."""

import errno as E
import os
import select
import threading
import time

from lib import (ARTIFACTS, WORK, Checks, Gpiofs, Sim, ename, poll1, pollnames, read,
                 read_errno, remove_all_sims, wait_for, write, write_errno)

c = Checks("hotplug")
APPEAR = 10.0  # seconds a chip may take to appear or vanish in the tree
EDGE = 2.0

remove_all_sims()
keep = Sim("hpkeep", 4)
MNT = os.path.join(WORK, "hotplug")
fs = Gpiofs(MNT)
fs.start()


def chipdirs(label):
    out = []
    for e in os.listdir(MNT):
        if e.startswith("gpiochip") and read_errno(f"{MNT}/{e}/label") == f"{label}\n":
            out.append(e)
    return out


def plug(round_):
    sim = Sim("hp", 8, ["hp-0", "hp-1"])
    kbase = sim.kernel_base()
    ok = wait_for(lambda: chipdirs("hp"), APPEAR)
    c.check(f"round {round_}: a chip created while mounted appears", ok, str(os.listdir(MNT)))
    if not ok:
        return sim, None
    name = ok[0]
    base = int(read(f"{MNT}/{name}/base"))
    c.eq(f"round {round_}: it is gpiochip<BASE> with the kernel's base", name, f"gpiochip{kbase}")
    c.eq(f"round {round_}: ngpio", read(f"{MNT}/{name}/ngpio"), "8\n")
    return sim, base


def round_trip(round_):
    sim, base = plug(round_)
    if base is None:
        sim.remove()
        return
    gpio = f"{MNT}/gpio{base + 1}"
    c.errno_is(f"round {round_}: export a line of the new chip",
               write_errno(f"{MNT}/export", str(base + 1)), 0)
    sim.pull(1, True)
    c.check(f"round {round_}: its value follows the pull",
            wait_for(lambda: read(f"{gpio}/value") == "1\n", EDGE))
    write(f"{gpio}/edge", "both")
    vfd = os.open(f"{gpio}/value", os.O_RDONLY)
    os.pread(vfd, 8, 0)
    efd = os.open(f"{gpio}/events", os.O_RDONLY)
    res = {}

    def reader():
        try:
            res["r"] = os.read(efd, 4096)
        except OSError as e:
            res["r"] = ename(e.errno)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(0.5)
    c.check(f"round {round_}: an events reader is blocked", th.is_alive())
    sim.remove()
    c.check(f"round {round_}: the gpio<N> directory vanishes with the chip",
            wait_for(lambda: not os.path.exists(gpio), APPEAR))
    c.check(f"round {round_}: the gpiochip<N> directory vanishes",
            wait_for(lambda: not chipdirs("hp"), APPEAR), str(os.listdir(MNT)))
    r = poll1(vfd, 1.0, select.POLLPRI | select.POLLERR)
    want = select.POLLPRI | select.POLLERR
    c.check(f"round {round_}: the open value file polls POLLERR|POLLPRI", r & want == want,
            pollnames(r))
    try:
        got = os.pread(vfd, 8, 0)
    except OSError as e:
        got = ename(e.errno)
    c.eq(f"round {round_}: reading it fails with ENODEV", got, "ENODEV")
    th.join(EDGE)
    c.eq(f"round {round_}: the blocked events reader gets EOF", res.get("r", "still blocked"), b"")
    os.close(vfd)
    os.close(efd)
    c.check(f"round {round_}: gpiofs is still running", fs.alive(), fs.log()[-1500:])
    c.check(f"round {round_}: the other chip is still there", chipdirs("hpkeep"))
    c.errno_is(f"round {round_}: export of the vanished number: EINVAL",
               write_errno(f"{MNT}/export", str(base + 1)), E.EINVAL)


def all_gone():
    keep.remove()
    c.check("all chips removed: the tree has only export and unexport",
            wait_for(lambda: sorted(os.listdir(MNT)) == ["export", "unexport"], APPEAR),
            str(os.listdir(MNT)))
    c.check("gpiofs is still running without chips", fs.alive())
    sim, base = plug("after all were removed")
    if base is not None:
        c.errno_is("and its line can be exported", write_errno(f"{MNT}/export", str(base)), 0)
        write(f"{MNT}/unexport", str(base))
    sim.remove()


c.run(round_trip, 1)
c.run(round_trip, 2)
c.run(all_gone)
rc = fs.stop()
c.eq("gpiofs exits 0 on SIGTERM", rc, 0)
os.makedirs(ARTIFACTS, exist_ok=True)
with open(os.path.join(ARTIFACTS, "gpiofs-hotplug.log"), "w") as f:
    f.write(fs.log())
remove_all_sims()
c.finish()
