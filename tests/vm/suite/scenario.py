#!/usr/bin/python3
"""The differential scenario: one fixed sequence of sysfs GPIO operations
(legacy, then the per-chip ABI where the class directory has it: scenario_chip.py),
recording everything a program can observe. Run once against the kernel's
/sys/class/gpio and once against gpiofs on an identical fresh gpio-sim chip;
diff.py compares the two records.

usage: scenario.py CLASSDIR LABEL SIMDIR OUT.json
  CLASSDIR  /sys/class/gpio or a gpiofs mount point
  LABEL     label of the gpio-sim chip to use (its gpiochip<BASE> is found by label)
  SIMDIR    the sim's /sys/devices/platform/gpio-sim.N/gpiochipM (sim_gpioK/pull, value)
  OUT.json  where the record goes: [[key, value], ...] in order

The chip needs at least 8 lines, line 1 named (export by name is tried).
Numbers that may differ between the two runs are normalised while recording:
the base (gpiochip{B}, gpio{B+k}), the chip device (gpiochip{C}) and the
platform device (gpio-sim.{D}).
"""

import json
import os
import re
import select
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (F_ACTIVE_LOW, F_BIAS_DISABLED, F_EDGE_FALLING, F_EDGE_RISING,  # noqa: E402
                 F_INPUT, F_OPEN_DRAIN, F_OPEN_SOURCE, F_OUTPUT, F_PULL_DOWN, F_PULL_UP, F_USED,
                 IN_ALL_EVENTS, Inotify, call_errno, ename, in_names, line_info, open_errno,
                 pollnames, pread_errno, read, read_errno, write_errno)
import scenario_chip  # noqa: E402

WAIT = 0.5  # seconds to wait to be sure that an edge is NOT reported
WAIT_EDGE = 3.0  # at most this long for one the kernel would report (returns early)
# then for asynchronous notifications (inotify) to land; 0.15 s was too short
# for the kernel's own work item on a loaded 2-core host
SETTLE = 0.3
EXTENSIONS = {"events", "bias", "drive", "debounce_us", "holders"}  # gpiofs-only files: not compared

CLASSDIR, LABEL, SIMDIR, OUT = sys.argv[1:5]
CHIPNAME = os.path.basename(SIMDIR)
DEVNAME = os.path.basename(os.path.dirname(SIMDIR))
CHIPNUM = int(CHIPNAME[len("gpiochip"):])

chipdirs = [e for e in os.listdir(CLASSDIR) if e.startswith("gpiochip")
            and read_errno(f"{CLASSDIR}/{e}/label").strip() == LABEL]
if len(chipdirs) != 1:
    sys.exit(f"scenario: want one gpiochip* labelled {LABEL} in {CLASSDIR}, found {chipdirs}")
CHIPDIR = f"{CLASSDIR}/{chipdirs[0]}"
BASE = int(read(f"{CHIPDIR}/base"))
NGPIO = int(read(f"{CHIPDIR}/ngpio"))
NAME1 = read(f"/sys/kernel/config/gpio-sim/{LABEL}/bank0/line1/name").strip()

records = []
seen = set()


def norm(s):
    s = str(s)

    def chip(m):
        n = int(m.group(1))
        if n == BASE:
            return "gpiochip{B}"
        if n == CHIPNUM:
            return "gpiochip{C}"
        return m.group(0)

    s = re.sub(r"gpiochip(\d+)", chip, s)
    s = re.sub(r"\bchip(\d+)", lambda m: "chip{C}" if int(m.group(1)) == CHIPNUM else m.group(0), s)
    s = re.sub(r"\bgpio(\d+)", lambda m: "gpio{B+%d}" % (int(m.group(1)) - BASE)
               if 0 <= int(m.group(1)) - BASE < NGPIO else m.group(0), s)
    s = re.sub(r"gpio-sim\.\d+", "gpio-sim.{D}", s)
    return s


def rec(key, value):
    key = norm(key)
    assert key not in seen, f"duplicate key {key}"
    seen.add(key)
    records.append([key, norm(value)])


def g(off):
    return BASE + off


def gdir(off):
    return f"{CLASSDIR}/gpio{g(off)}"


def pull(off, up):
    with open(f"{SIMDIR}/sim_gpio{off}/pull", "w") as f:
        f.write("pull-up" if up else "pull-down")


def simval(off):
    return read(f"{SIMDIR}/sim_gpio{off}/value").strip()


def kind(path):
    """lstat type and mode; for a symlink, the type stat() follows it to."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return ename(e.errno)
    if stat.S_ISLNK(st.st_mode):
        try:
            tgt = os.stat(path)
            return "link->" + ("dir" if stat.S_ISDIR(tgt.st_mode) else "file")
        except OSError as e:
            return "link->" + ename(e.errno)
    if stat.S_ISDIR(st.st_mode):
        return f"dir {stat.S_IMODE(st.st_mode):04o} uid={st.st_uid} gid={st.st_gid}"
    t = "file" if stat.S_ISREG(st.st_mode) else "other"
    return (f"{t} {stat.S_IMODE(st.st_mode):04o} size={st.st_size} uid={st.st_uid} "
            f"gid={st.st_gid}")


def listing(key, path, detail=True):
    names = sorted(n for n in os.listdir(path) if n not in EXTENSIONS and n != "sim")
    rec(f"{key}/ls", " ".join(names))
    if detail:
        for n in names:
            rec(f"{key}/{n}/kind", kind(f"{path}/{n}"))


FLAG_NAMES = [(F_USED, "used"), (F_ACTIVE_LOW, "active-low"), (F_INPUT, "input"),
              (F_OUTPUT, "output"), (F_EDGE_RISING, "edge-rising"),
              (F_EDGE_FALLING, "edge-falling"), (F_OPEN_DRAIN, "open-drain"),
              (F_OPEN_SOURCE, "open-source"), (F_PULL_UP, "pull-up"),
              (F_PULL_DOWN, "pull-down"), (F_BIAS_DISABLED, "bias-disabled")]


def lineinfo(key, off):
    """What the chardev (gpioinfo) shows of the line."""
    info = line_info(CHIPNAME, off)
    rec(f"{key}/lineinfo/consumer", info["consumer"])
    rec(f"{key}/lineinfo/flags", " ".join(n for f, n in FLAG_NAMES if info["flags"] & f))


def w(key, path, data, **kw):
    rec(key, ename(write_errno(path, data, **kw)))


def readtext(path):
    r = read_errno(path)
    return r


# ------------------------------------------------------------------ the tree
def tree():
    listing("class", CLASSDIR)
    listing("chip", CHIPDIR)
    for f in ("base", "label", "ngpio", "uevent"):
        rec(f"chip/{f}/text", repr(readtext(f"{CHIPDIR}/{f}")))
    rec("chip/device/has-chip", os.path.isdir(f"{CHIPDIR}/device/{CHIPNAME}"))
    rec("chip/subsystem/is-class", os.path.samefile(f"{CHIPDIR}/subsystem", CLASSDIR))
    listing("chip/power", f"{CHIPDIR}/power", detail=False)
    for f in ("base", "label", "ngpio"):
        rec(f"chip/{f}/open-wronly", ename(open_errno(f"{CHIPDIR}/{f}", os.O_WRONLY)))
        rec(f"chip/{f}/open-rdwr", ename(open_errno(f"{CHIPDIR}/{f}", os.O_RDWR)))
    for f in ("export", "unexport"):
        rec(f"class/{f}/open-rdonly", ename(open_errno(f"{CLASSDIR}/{f}", os.O_RDONLY)))
        rec(f"class/{f}/open-wronly-trunc",
            ename(open_errno(f"{CLASSDIR}/{f}", os.O_WRONLY | os.O_TRUNC)))


def attr_polls():
    """The kernfs poll rule holds for every sysfs file, not only value."""
    w("g7/export", f"{CLASSDIR}/export", str(g(7)))
    d = gdir(7)
    files = [f"gpio/{f}" for f in ("direction", "edge", "active_low", "uevent", "value")]
    files += [f"chip/{f}" for f in ("base", "label", "ngpio", "uevent")]
    for f in files:
        path = f"{d}/{f[5:]}" if f.startswith("gpio/") else f"{CHIPDIR}/{f[5:]}"
        fd = os.open(path, os.O_RDONLY)
        rec(f"attrpoll/{f}/open", pollnames(wait_poll(fd, 0)))
        os.read(fd, 64)
        rec(f"attrpoll/{f}/read", pollnames(wait_poll(fd, 0)))
        os.close(fd)
    for f in ("export", "unexport"):
        fd = os.open(f"{CLASSDIR}/{f}", os.O_WRONLY)
        rec(f"attrpoll/{f}/open", pollnames(wait_poll(fd, 0)))
        os.close(fd)
    w("g7/unexport", f"{CLASSDIR}/unexport", str(g(7)))


def as_nobody():
    """Access checks for an unprivileged user (uid/gid 65534)."""
    w("nobody/export", f"{CLASSDIR}/export", str(g(7)))
    d = gdir(7)
    tests = [("stat-class", lambda: os.stat(CLASSDIR)),
             ("list-class", lambda: os.listdir(CLASSDIR)),
             ("read-value", lambda: read(f"{d}/value")),
             ("read-label", lambda: read(f"{CHIPDIR}/label")),
             ("write-value", lambda: os.close(os.open(f"{d}/value", os.O_WRONLY))),
             ("write-export", lambda: os.close(os.open(f"{CLASSDIR}/export", os.O_WRONLY)))]
    for name, fn in tests:
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    fn()
                    res = "ok"
                except OSError as e:
                    res = ename(e.errno)
                os.write(wfd, res.encode())
            finally:
                os._exit(0)
        os.close(wfd)
        res = os.read(r, 64).decode()
        os.close(r)
        os.waitpid(pid, 0)
        rec(f"nobody/{name}", res)
    w("nobody/unexport", f"{CLASSDIR}/unexport", str(g(7)))


# ---------------------------------------------------------- export/unexport
def export_parsing():
    n = g(2)
    cases = [("junk", "abc"), ("empty", ""), ("newline", "\n"), ("neg", "-1"),
             ("neg-line", f"-{n}"), ("overflow", "99999999999999999999"),
             ("unowned-above", str(BASE + NGPIO)), ("unowned-below", str(BASE - 1)),
             ("lead-space", f" {n}"), ("trail-space", f"{n} "), ("two-newlines", f"{n}\n\n"),
             ("dec", f"{n}"), ("dec-newline", f"{n}\n"), ("hex", hex(n)), ("HEX", f"0X{n:X}"),
             ("octal", f"0{n:o}"), ("plus", f"+{n}"), ("nul", f"{n}\0"),
             ("name", NAME1), ("name-newline", NAME1 + "\n")]
    ino = Inotify()
    ino.add(CLASSDIR, IN_ALL_EVENTS)
    for what, text in cases:
        w(f"export/{what}", f"{CLASSDIR}/export", text)
        for off in (1, 2):
            if os.path.isdir(gdir(off)):
                rec(f"export/{what}/made", f"gpio{g(off)}")
                w(f"export/{what}/unexport", f"{CLASSDIR}/unexport", str(g(off)))
        if what in ("junk", "dec"):
            time.sleep(SETTLE)
            rec(f"export/{what}/inotify-classdir",
                " ".join(f"{in_names(m)}:{n}" for _, m, n in ino.events(0)) or "-")
    ino.close()
    w("export/at-offset", f"{CLASSDIR}/export", str(n), offset=100)
    rec("export/at-offset/made", os.path.isdir(gdir(2)))
    w("export/again", f"{CLASSDIR}/export", str(n))
    w("export/trunc", f"{CLASSDIR}/export", str(n), flags=os.O_WRONLY | os.O_TRUNC)
    for what, text in [("junk", "abc"), ("empty", ""), ("neg", "-1"),
                       ("overflow", "99999999999999999999"), ("unowned", str(BASE + NGPIO)),
                       ("not-exported", str(g(0))), ("name", NAME1), ("hex", hex(n)),
                       ("again", str(n))]:
        w(f"unexport/{what}", f"{CLASSDIR}/unexport", text)
    rec("unexport/gone", not os.path.exists(gdir(2)))


# ------------------------------------------------------------------ gpio dir
def gpio_dir():
    lineinfo("g3/before-export", 3)
    w("g3/export", f"{CLASSDIR}/export", str(g(3)))
    d = gdir(3)
    lineinfo("g3/exported", 3)
    listing("g3", d)
    listing("class-with-g3", CLASSDIR)
    listing("g3/power", f"{d}/power", detail=False)
    rec("g3/device/is-chip-device", os.path.samefile(f"{d}/device", f"{CHIPDIR}/device/{CHIPNAME}"))
    rec("g3/subsystem/is-class", os.path.samefile(f"{d}/subsystem", CLASSDIR))
    for f in ("direction", "value", "edge", "active_low", "uevent"):
        rec(f"g3/{f}/text", repr(readtext(f"{d}/{f}")))
    pull(3, True)
    time.sleep(0.05)
    fd = os.open(f"{d}/value", os.O_RDONLY)
    rec("g3/value/bytes", repr([os.read(fd, 1).decode() for _ in range(3)]))
    rec("g3/value/pread1", repr(pread_errno(fd, 64, 1)))
    rec("g3/value/pread5", repr(pread_errno(fd, 64, 5)))
    rec("g3/value/lseek-end", ename(call_errno(os.lseek, fd, 0, os.SEEK_END)))
    rec("g3/value/rdonly-pwrite", ename(call_errno(os.pwrite, fd, b"1", 0)))
    rec("g3/value/rdonly-write", ename(call_errno(os.write, fd, b"1")))
    os.close(fd)
    fd = os.open(f"{d}/active_low", os.O_WRONLY)
    rec("g3/active_low/pwrite@7", ename(call_errno(os.pwrite, fd, b"0", 7)))
    os.close(fd)
    fd = os.open(f"{d}/value", os.O_WRONLY)
    rec("g3/value/wronly-read", ename(call_errno(os.read, fd, 8)))
    os.close(fd)
    for f in ("direction", "value", "edge", "active_low", "uevent"):
        rec(f"g3/{f}/open-rdwr", ename(open_errno(f"{d}/{f}", os.O_RDWR)))
    ino = Inotify()
    ino.add(d, IN_ALL_EVENTS)
    w("g3/inotify/direction", f"{d}/direction", "in")
    w("g3/inotify/edge-junk", f"{d}/edge", "junk")
    time.sleep(SETTLE)
    rec("g3/inotify/gpiodir", " ".join(f"{in_names(m)}:{n}" for _, m, n in ino.events(0)) or "-")
    ino.close()
    # bad and odd writes while the line is an input
    for text in ["IN", "inx", "", " in", "in ", "in\n\n", "input", "in\0", "in", "in\n"]:
        w(f"g3/direction={text!r}", f"{d}/direction", text)
    for text in ["NONE", "risin", "", " both", "both ", "both\n\n", "none\n"]:
        w(f"g3/edge={text!r}", f"{d}/edge", text)
    for text in ["x", "", "1x", " 1", "99999999999999999999", "0x", "1\n\n", "1", "0", "2",
                 "-1", "0x0", "010"]:
        w(f"g3/active_low={text!r}", f"{d}/active_low", text)
        rec(f"g3/active_low={text!r}/now", repr(readtext(f"{d}/active_low")))
    w("g3/active_low=0", f"{d}/active_low", "0")
    for text in ["1", "0", "x", "", "99999999999999999999"]:
        w(f"g3/in/value={text!r}", f"{d}/value", text)
    w("g3/active_low@100", f"{d}/active_low", "1", offset=100)
    rec("g3/active_low@100/now", repr(readtext(f"{d}/active_low")))
    w("g3/active_low=0-trunc", f"{d}/active_low", "0", flags=os.O_WRONLY | os.O_TRUNC)
    rec("g3/active_low=0-trunc/now", repr(readtext(f"{d}/active_low")))
    for text in ["add", "add\n", "bogus", "", "change 00000000-0000-0000-0000-000000000000 A=B",
                 "change notauuid", "change 00000000-0000-0000-0000-000000000000 junk"]:
        w(f"g3/uevent={text!r}", f"{d}/uevent", text)
    rec("g3/uevent/after", repr(readtext(f"{d}/uevent")))
    # the namespace
    rec("ns/unlink-export", ename(call_errno(os.unlink, f"{CLASSDIR}/export")))
    rec("ns/unlink-value", ename(call_errno(os.unlink, f"{d}/value")))
    rec("ns/mkdir-class", ename(call_errno(os.mkdir, f"{CLASSDIR}/newdir")))
    rec("ns/mkdir-gpio", ename(call_errno(os.mkdir, f"{d}/newdir")))
    rec("ns/create-class", ename(open_errno(f"{CLASSDIR}/newfile", os.O_CREAT | os.O_WRONLY)))
    rec("ns/create-gpio", ename(open_errno(f"{d}/newfile", os.O_CREAT | os.O_WRONLY)))
    rec("ns/rmdir-chip", ename(call_errno(os.rmdir, CHIPDIR)))
    rec("ns/rmdir-gpio", ename(call_errno(os.rmdir, d)))
    rec("ns/rename-value", ename(call_errno(os.rename, f"{d}/value", f"{d}/value2")))
    rec("ns/symlink-class", ename(call_errno(os.symlink, "export", f"{CLASSDIR}/newlink")))
    rec("ns/link-value", ename(call_errno(os.link, f"{d}/value", f"{d}/value2")))
    rec("ns/chmod-value", ename(call_errno(os.chmod, f"{d}/value", 0o600)))
    rec("ns/chmod-value/now", kind(f"{d}/value"))
    rec("ns/chmod-value-back", ename(call_errno(os.chmod, f"{d}/value", 0o644)))
    rec("ns/truncate-value", ename(call_errno(os.truncate, f"{d}/value", 0)))


# -------------------------------------------------------------------- output
def output():
    d = gdir(3)
    ino = Inotify()
    ino.add(f"{d}/value", IN_ALL_EVENTS)

    def state(key):
        rec(f"{key}/direction", repr(readtext(f"{d}/direction")))
        rec(f"{key}/value", repr(readtext(f"{d}/value")))
        rec(f"{key}/sim", simval(3))

    for text in ["high", "low", "out", "high\n", "in", "low\n", "HIGH"]:
        w(f"out/direction={text!r}", f"{d}/direction", text)
        state(f"out/direction={text!r}")
    lineinfo("out", 3)
    ino.events(0.1)
    for text in ["1", "0", "2", "-5", "0x1", "00", "x", "", "99999999999999999999", "1\n\n",
                 " 1"]:
        w(f"out/value={text!r}", f"{d}/value", text)
        rec(f"out/value={text!r}/sim", simval(3))
        rec(f"out/value={text!r}/inotify",
            " ".join(in_names(m) for _, m, _ in ino.events(0.1)))
    w("out/value@100", f"{d}/value", "1", offset=100)
    rec("out/value@100/sim", simval(3))
    w("out/value=0-trunc", f"{d}/value", "0", flags=os.O_WRONLY | os.O_TRUNC)
    rec("out/value=0-trunc/sim", simval(3))
    for text in ["rising", "falling", "both", "none", "bogus"]:
        w(f"out/edge={text!r}", f"{d}/edge", text)
        rec(f"out/edge={text!r}/now", repr(readtext(f"{d}/edge")))
    w("out/active_low=1", f"{d}/active_low", "1")
    state("out/active_low=1")
    lineinfo("out/active_low=1", 3)
    w("out/al1/value=1", f"{d}/value", "1")
    state("out/al1/value=1")
    w("out/al1/direction=high", f"{d}/direction", "high")
    state("out/al1/direction=high")
    w("out/al1/direction=low", f"{d}/direction", "low")
    state("out/al1/direction=low")
    w("out/al1/direction=out", f"{d}/direction", "out")
    state("out/al1/direction=out")
    w("out/active_low=0", f"{d}/active_low", "0")
    pull(3, False)
    w("out/direction=in", f"{d}/direction", "in")
    time.sleep(0.05)
    state("out/direction=in")
    ino.close()
    # `out` while edge is set
    w("g4/export", f"{CLASSDIR}/export", str(g(4)))
    d4 = gdir(4)
    pull(4, False)
    for e in ("both", "rising"):
        w(f"g4/{e}/edge", f"{d4}/edge", e)
        for text in ("out", "high", "low"):
            w(f"g4/{e}/direction={text}", f"{d4}/direction", text)
            rec(f"g4/{e}/direction={text}/direction", repr(readtext(f"{d4}/direction")))
            rec(f"g4/{e}/direction={text}/edge", repr(readtext(f"{d4}/edge")))
            rec(f"g4/{e}/direction={text}/sim", simval(4))
        w(f"g4/{e}/value=1", f"{d4}/value", "1")
        rec(f"g4/{e}/value=1/sim", simval(4))
        w(f"g4/{e}/in", f"{d4}/direction", "in")
        rec(f"g4/{e}/in/edge", repr(readtext(f"{d4}/edge")))
    w("g4/edge=none", f"{d4}/edge", "none")
    w("g4/unexport", f"{CLASSDIR}/unexport", str(g(4)))


# ---------------------------------------------------------------- poll matrix
def pollrec(key, fd):
    rec(f"{key}/poll", pollnames(wait_poll(fd, 0)))
    rec(f"{key}/select", sel(fd))


def wait_poll(fd, timeout):
    p = select.poll()
    p.register(fd, select.POLLPRI | select.POLLERR)
    r = p.poll(int(timeout * 1000))
    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLERR
               | select.POLLRDNORM | select.POLLWRNORM)
    r = p.poll(0)
    return r[0][1] if r else 0


def sel(fd):
    r, wr, x = select.select([fd], [fd], [fd], 0)
    return "".join(["r" if r else "-", "w" if wr else "-", "x" if x else "-"])


def inorec(key, ino):
    rec(f"{key}/inotify", " ".join(in_names(m) for _, m, _ in ino.events(0)) or "-")


def counts(edge, al, raw_up):
    """Whether the kernel counts this raw edge (only to choose how long to wait)."""
    logical_up = raw_up != bool(al)
    return edge == "both" or (edge == "rising" and logical_up) or (edge == "falling" and not logical_up)


def poll_matrix():
    off = 5
    w("g5/export", f"{CLASSDIR}/export", str(g(off)))
    d = gdir(off)
    for al in (0, 1):
        for edge in ("none", "rising", "falling", "both"):
            k = f"poll/al={al}/edge={edge}"
            pull(off, False)
            time.sleep(0.1)
            w(f"{k}/set-al", f"{d}/active_low", str(al))
            w(f"{k}/set-edge", f"{d}/edge", edge)
            lineinfo(k, off)
            ino = Inotify()
            ino.add(f"{d}/value", IN_ALL_EVENTS)
            fd = os.open(f"{d}/value", os.O_RDONLY)
            pollrec(f"{k}/open", fd)
            rec(f"{k}/open/read", repr(pread_errno(fd)))
            pollrec(f"{k}/read", fd)
            inorec(f"{k}/read", ino)
            for step, up in (("raw-rise", True), ("raw-fall", False)):
                pull(off, up)
                wait_poll(fd, WAIT_EDGE if counts(edge, al, up) else WAIT)
                time.sleep(SETTLE)
                pollrec(f"{k}/{step}", fd)
                inorec(f"{k}/{step}", ino)
                rec(f"{k}/{step}/read", repr(pread_errno(fd)))
                pollrec(f"{k}/{step}/read", fd)
            # two edges, no read in between: one latched event
            pull(off, True)
            time.sleep(WAIT)
            pull(off, False)
            time.sleep(WAIT)
            pollrec(f"{k}/two-edges", fd)
            inorec(f"{k}/two-edges", ino)
            rec(f"{k}/two-edges/read", repr(pread_errno(fd)))
            pollrec(f"{k}/two-edges/read", fd)
            # a read at offset 1 re-arms too?
            pull(off, True)
            wait_poll(fd, WAIT_EDGE if counts(edge, al, True) else WAIT)
            time.sleep(SETTLE)
            rec(f"{k}/rise/pread-at-1", repr(pread_errno(fd, 64, 1)))
            pollrec(f"{k}/rise/pread-at-1", fd)
            pull(off, False)
            wait_poll(fd, WAIT_EDGE if counts(edge, al, False) else WAIT)
            time.sleep(SETTLE)
            rec(f"{k}/fall/lseek", ename(call_errno(os.lseek, fd, 0, os.SEEK_SET)))
            pollrec(f"{k}/fall/lseek", fd)
            os.close(fd)
            time.sleep(SETTLE)
            inorec(f"{k}/close", ino)
            ino.close()
    w("poll/edge=none", f"{d}/edge", "none")
    w("poll/active_low=0", f"{d}/active_low", "0")


def epolls():
    off = 6
    w("g6/export", f"{CLASSDIR}/export", str(g(off)))
    d = gdir(off)
    pull(off, False)
    w("g6/edge", f"{d}/edge", "both")
    lt = select.epoll()
    et = select.epoll()
    fd1 = os.open(f"{d}/value", os.O_RDONLY)
    fd2 = os.open(f"{d}/value", os.O_RDONLY)
    lt.register(fd1, select.EPOLLPRI)
    et.register(fd2, select.EPOLLPRI | select.EPOLLET)

    def ep(key):
        for name, e in (("lt", lt), ("et", et)):
            rec(f"{key}/{name}", pollnames(sum(m for _, m in e.poll(0))))

    ep("epoll/open")
    ep("epoll/open-again")
    os.pread(fd1, 64, 0)
    os.pread(fd2, 64, 0)
    ep("epoll/read")
    pull(off, True)
    lt.poll(WAIT_EDGE)
    time.sleep(SETTLE)
    ep("epoll/rise")
    ep("epoll/rise-again")
    rec("epoll/rise/select-x-fd1", sel(fd1))
    os.pread(fd1, 64, 0)
    ep("epoll/rise/read-fd1")
    pull(off, False)
    et.poll(WAIT_EDGE)
    time.sleep(SETTLE)
    ep("epoll/fall")
    os.pread(fd1, 64, 0)
    os.pread(fd2, 64, 0)
    ep("epoll/fall/read")
    # unexport with the files open
    w("g6/unexport", f"{CLASSDIR}/unexport", str(g(off)))
    lineinfo("g6/unexported", off)
    time.sleep(0.05)
    ep("epoll/unexport")
    rec("g6/unexported/poll", pollnames(wait_poll(fd1, 0)))
    rec("g6/unexported/select", sel(fd1))
    rec("g6/unexported/read", repr(pread_errno(fd1)))
    rec("g6/unexported/write", ename(call_errno(os.pwrite, fd1, b"1", 0)))
    rec("g6/unexported/lseek", ename(call_errno(os.lseek, fd1, 0, os.SEEK_SET)))
    rec("g6/unexported/fstat", ename(call_errno(os.fstat, fd1)))
    w("g6/reexport", f"{CLASSDIR}/export", str(g(off)))
    rec("g6/reexport/old-fd-read", repr(pread_errno(fd1)))
    rec("g6/reexport/old-fd-poll", pollnames(wait_poll(fd1, 0)))
    for fd in (fd1, fd2):
        os.close(fd)
    lt.close()
    et.close()
    w("g6/unexport-again", f"{CLASSDIR}/unexport", str(g(off)))


def chip_abi():
    scenario_chip.run(sys.modules[__name__])


def teardown():
    for off in range(NGPIO):
        if os.path.isdir(gdir(off)):
            w(f"teardown/unexport-{off}", f"{CLASSDIR}/unexport", str(g(off)))
    listing("class-end", CLASSDIR, detail=False)


def main():
    for off in range(NGPIO):
        pull(off, False)
    for step in (tree, export_parsing, gpio_dir, output, attr_polls, as_nobody, poll_matrix,
                 epolls, chip_abi, teardown):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - the record says where it stopped
            rec(f"{step.__name__}/aborted", f"{type(e).__name__}: {e}")
            import traceback
            traceback.print_exc()
    with open(OUT, "w") as f:
        json.dump(records, f, indent=0)


main()
