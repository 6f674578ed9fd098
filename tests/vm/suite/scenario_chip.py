"""The differential scenario's part for the per-chip sysfs ABI of Linux
6.17+ (drivers/gpio/gpiolib-sysfs.c: /sys/class/gpio/chipX/, export and
unexport by hardware offset, chipX/gpio<OFFSET>/{direction,value}).

scenario.py calls run(sc) with itself as `sc` (its rec, w, listing, ...).
Where the class directory has no chip<X> (Linux 6.12, gpiofs --abi legacy)
it records only that."""

import os
import time

from lib import call_errno, ename, open_errno, pollnames, pread_errno


def run(sc):
    cx = f"{sc.CLASSDIR}/chip{sc.CHIPNUM}"
    present = os.path.isdir(cx)
    sc.rec("chipabi/present", present)
    if not present:
        return
    tree(sc, cx)
    export_parsing(sc, cx)
    line(sc, cx)
    interplay(sc, cx)
    polls(sc, cx)


def tree(sc, cx):
    sc.listing("chipX", cx)
    for f in ("label", "ngpio", "uevent"):
        sc.rec(f"chipX/{f}/text", repr(sc.readtext(f"{cx}/{f}")))
    sc.rec("chipX/device/has-chip", os.path.isdir(f"{cx}/device/{sc.CHIPNAME}"))
    sc.rec("chipX/device/same-as-gpiochip",
           os.path.samefile(f"{cx}/device", f"{sc.CHIPDIR}/device"))
    sc.rec("chipX/subsystem/is-class", os.path.samefile(f"{cx}/subsystem", sc.CLASSDIR))
    sc.listing("chipX/power", f"{cx}/power", detail=False)
    for f in ("label", "ngpio"):
        sc.rec(f"chipX/{f}/open-wronly", ename(open_errno(f"{cx}/{f}", os.O_WRONLY)))
    for f in ("export", "unexport"):
        sc.rec(f"chipX/{f}/open-rdonly", ename(open_errno(f"{cx}/{f}", os.O_RDONLY)))
        sc.rec(f"chipX/{f}/open-rdwr", ename(open_errno(f"{cx}/{f}", os.O_RDWR)))
    sc.rec("chipX/rmdir", ename(call_errno(os.rmdir, cx)))
    sc.rec("chipX/mkdir", ename(call_errno(os.mkdir, f"{cx}/x")))
    sc.rec("chipX/unlink-export", ename(call_errno(os.unlink, f"{cx}/export")))


def export_parsing(sc, cx):
    """kstrtouint and gpio_device_get_desc: each text is exported, then
    unexported if that worked."""
    texts = ["x", "", "\n", " 2", "2 ", "2x", "-2", "-0", "+2", "++2", "0x2", "02", "08",
             "2\n", "2\n\n", "2\0junk", str(sc.NGPIO - 1), str(sc.NGPIO), "4294967295",
             "4294967296", "99999999999999999999", sc.NAME1]
    before = {n for n in os.listdir(cx) if n.startswith("gpio")}  # exported by earlier steps
    for text in texts:
        sc.w(f"chipX/export={text!r}", f"{cx}/export", text)
        dirs = sorted(n for n in os.listdir(cx) if n.startswith("gpio") and n not in before)
        sc.rec(f"chipX/export={text!r}/dirs", " ".join(dirs) or "-")
        for d in dirs:
            sc.w(f"chipX/export={text!r}/unexport-{d}", f"{cx}/unexport", d[4:])
    for text in ["x", "-1", "+1", "4294967296", str(sc.NGPIO), "1"]:
        sc.w(f"chipX/unexport-unexported={text!r}", f"{cx}/unexport", text)


def line(sc, cx):
    sc.w("cx2/export", f"{cx}/export", "2")
    d = f"{cx}/gpio2"
    sc.listing("cx2", d)
    sc.listing("chipX-with-cx2", cx)
    sc.listing("class-with-cx2", sc.CLASSDIR)
    for f in ("direction", "value"):
        sc.rec(f"cx2/{f}/text", repr(sc.readtext(f"{d}/{f}")))
        sc.rec(f"cx2/{f}/open-rdwr", ename(open_errno(f"{d}/{f}", os.O_RDWR)))
    sc.rec("cx2/rmdir", ename(call_errno(os.rmdir, d)))
    sc.rec("cx2/mkdir", ename(call_errno(os.mkdir, f"{d}/x")))
    sc.pull(2, True)
    time.sleep(0.05)
    sc.rec("cx2/pull-up/value", repr(sc.readtext(f"{d}/value")))
    for text in ["1", "x", "", "0"]:
        sc.w(f"cx2/in/value={text!r}", f"{d}/value", text)
    for text in ["IN", "", "in\n\n", "out ", "high", "low", "out", "in"]:
        sc.w(f"cx2/direction={text!r}", f"{d}/direction", text)
        sc.rec(f"cx2/direction={text!r}/now", repr(sc.readtext(f"{d}/direction")))
        sc.rec(f"cx2/direction={text!r}/sim", sc.simval(2))
    sc.w("cx2/direction=out", f"{d}/direction", "out")
    for text in ["1", "0", "2", "-5", "0x1", "x", "", "1\n\n", " 1"]:
        sc.w(f"cx2/out/value={text!r}", f"{d}/value", text)
        sc.rec(f"cx2/out/value={text!r}/sim", sc.simval(2))
        sc.rec(f"cx2/out/value={text!r}/legacy", repr(sc.readtext(f"{sc.gdir(2)}/value")))
    # active_low exists only in the legacy directory, and applies to both
    sc.w("cx2/legacy-active_low=1", f"{sc.gdir(2)}/active_low", "1")
    sc.rec("cx2/al1/value", repr(sc.readtext(f"{d}/value")))
    sc.w("cx2/al1/value=1", f"{d}/value", "1")
    sc.rec("cx2/al1/value=1/sim", sc.simval(2))
    sc.w("cx2/legacy-active_low=0", f"{sc.gdir(2)}/active_low", "0")
    sc.w("cx2/legacy-direction=in", f"{sc.gdir(2)}/direction", "in")
    sc.rec("cx2/legacy-direction=in/now", repr(sc.readtext(f"{d}/direction")))
    sc.pull(2, False)


def interplay(sc, cx):
    """Export through either interface shows both; unexport through either
    removes both; a line exported through one is busy for the other."""
    sc.w("both/export-again-chip", f"{cx}/export", "2")
    sc.w("both/export-again-legacy", f"{sc.CLASSDIR}/export", str(sc.g(2)))
    sc.w("both/unexport-legacy", f"{sc.CLASSDIR}/unexport", str(sc.g(2)))
    sc.rec("both/unexport-legacy/cx2", os.path.exists(f"{cx}/gpio2"))
    sc.rec("both/unexport-legacy/g2", os.path.exists(sc.gdir(2)))
    sc.w("both/export-legacy", f"{sc.CLASSDIR}/export", str(sc.g(4)))
    sc.listing("both/export-legacy/chipX", cx, detail=False)
    sc.listing("both/export-legacy/cx4", f"{cx}/gpio4", detail=False)
    sc.w("both/export-legacy/chip-export", f"{cx}/export", "4")
    sc.w("both/unexport-chip", f"{cx}/unexport", "4")
    sc.rec("both/unexport-chip/cx4", os.path.exists(f"{cx}/gpio4"))
    sc.rec("both/unexport-chip/g4", os.path.exists(sc.gdir(4)))
    sc.w("both/unexport-chip-again", f"{cx}/unexport", "4")
    sc.w("both/unexport-legacy-again", f"{sc.CLASSDIR}/unexport", str(sc.g(4)))
    sc.listing("both/end/class", sc.CLASSDIR, detail=False)
    sc.listing("both/end/chipX", cx, detail=False)


def polls(sc, cx):
    """Only the legacy value is notified (sysfs_notify_dirent on its node)."""
    sc.w("cxpoll/export", f"{cx}/export", "6")
    sc.pull(6, False)
    sc.w("cxpoll/edge", f"{sc.gdir(6)}/edge", "both")
    fd = os.open(f"{cx}/gpio6/value", os.O_RDONLY)
    lfd = os.open(f"{sc.gdir(6)}/value", os.O_RDONLY)
    sc.pollrec("cxpoll/open", fd)
    sc.rec("cxpoll/read", repr(pread_errno(fd)))
    os.pread(lfd, 64, 0)
    sc.pollrec("cxpoll/after-read", fd)
    sc.pull(6, True)
    sc.rec("cxpoll/edge/legacy", pollnames(sc.wait_poll(lfd, sc.WAIT_EDGE)))
    sc.rec("cxpoll/edge/chip", pollnames(sc.wait_poll(fd, sc.WAIT)))
    sc.rec("cxpoll/edge/read", repr(pread_errno(fd)))
    dfd = os.open(f"{cx}/gpio6/direction", os.O_RDONLY)
    sc.pollrec("cxpoll/direction/open", dfd)
    os.pread(dfd, 64, 0)
    sc.pollrec("cxpoll/direction/read", dfd)
    sc.w("cxpoll/unexport", f"{cx}/unexport", "6")
    sc.pollrec("cxpoll/unexported", fd)
    sc.rec("cxpoll/unexported/read", repr(pread_errno(fd)))
    sc.rec("cxpoll/unexported/direction-read", repr(pread_errno(dfd)))
    sc.rec("cxpoll/unexported/fstat", ename(call_errno(os.fstat, fd)))
    for f in (fd, lfd, dfd):
        os.close(f)
    sc.pull(6, False)
