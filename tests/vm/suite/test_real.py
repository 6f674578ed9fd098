#!/usr/bin/python3
"""gpiofs on a real gpio-sim chip (runs INSIDE the VM): export by number and
name, values both ways, the errnos of SPEC section 2 (the kernel's where they
differ), poll/select/epoll and inotify on real edges, the events stream,
EBUSY against other holders (named in the log), the consumer label and live
reconfiguration of bias/drive/debounce without releasing the line."""

import os
import re
import select
import threading
import time

from lib import (F_OPEN_DRAIN, F_OPEN_SOURCE, F_OUTPUT, F_PULL_DOWN, F_PULL_UP, F_USED,
                 F_BIAS_DISABLED, WORK, ARTIFACTS, Checks, Gpiofs, InfoWatch, Inotify, IN_MODIFY, Sim,
                 call_errno, ename, gpio_holder, gpiod_major, gpiod_tools_run, gpioinfo_line,
                 line_info, open_errno, poll1, pollnames, read, read_errno, remove_all_sims,
                 request_line, select_x, wait_for, write, write_errno)
import errno as E

c = Checks("real")
CONSUMER = "vmtest"
NAMES = ["rk-a", "rk-led", "rk-btn", "rk-3", "rk-4", "rk-5", "rk-6", "rk-7", "rk-8", "rk-9",
         "", "", "", "", "dup", "dup"]
EDGE = 2.0  # seconds an expected edge may take to show
QUIET = 0.5  # seconds to wait to be sure that nothing shows

remove_all_sims()
sim = Sim("rk", len(NAMES), NAMES)
KBASE = sim.kernel_base()
MNT = os.path.join(WORK, "real")
fs = Gpiofs(MNT, "--consumer", CONSUMER)
fs.start()
BASE = None
for e in os.listdir(MNT):
    if e.startswith("gpiochip") and read_errno(f"{MNT}/{e}/label") == "rk\n":
        BASE = int(read(f"{MNT}/{e}/base"))


def g(off):
    return BASE + off


def gd(off):
    return f"{MNT}/gpio{g(off)}"


def export(off):
    write(f"{MNT}/export", str(g(off)))


def unexport(off):
    write(f"{MNT}/unexport", str(g(off)))


def werr(path, text, **kw):
    return write_errno(path, text, **kw)


def tree():
    c.eq("gpiochip<BASE> of the sim chip uses the kernel's sysfs base", BASE, KBASE)
    cd = f"{MNT}/gpiochip{BASE}"
    c.eq("label", read(f"{cd}/label"), "rk\n")
    c.eq("ngpio", read(f"{cd}/ngpio"), f"{len(NAMES)}\n")
    c.eq("base", read(f"{cd}/base"), f"{BASE}\n")
    c.check("device/<chip name> exists", os.path.isdir(f"{cd}/device/{sim.chip}"))


FILES = {"direction", "value", "edge", "active_low", "uevent", "device", "power", "subsystem",
         "events", "bias", "drive", "debounce_us", "holders"}


def export_unexport():
    c.errno_is("export by number", werr(f"{MNT}/export", str(g(0))), 0)
    c.check("gpio<N> appears", os.path.isdir(gd(0)))
    c.eq("gpio<N> has the expected files", set(os.listdir(gd(0))), FILES)
    c.errno_is("unexport by number", werr(f"{MNT}/unexport", f"{g(0)}\n"), 0)
    c.check("gpio<N> vanishes", not os.path.exists(gd(0)))
    c.errno_is("export by line name", werr(f"{MNT}/export", "rk-led\n"), 0)
    c.check("export by name makes gpio<BASE+offset>", os.path.isdir(gd(1)))
    c.errno_is("unexport by line name", werr(f"{MNT}/unexport", "rk-led"), 0)
    c.check("unexport by name removes it", not os.path.exists(gd(1)))
    c.errno_is("export of an unknown name: EINVAL", werr(f"{MNT}/export", "no-such-line"), E.EINVAL)
    e = werr(f"{MNT}/export", "dup")
    c.check(f"export of an ambiguous name fails (got {ename(e)})", e != 0)
    c.check("... and exports nothing", not os.path.exists(gd(14)) and not os.path.exists(gd(15)))
    c.errno_is("export with echo (O_TRUNC)",
               werr(f"{MNT}/export", f"{g(0)}\n", flags=os.O_WRONLY | os.O_TRUNC), 0)
    c.errno_is("unexport in hex", werr(f"{MNT}/unexport", hex(g(0))), 0)


def values():
    off = 2
    export(off)
    d = gd(off)
    sim.pull(off, True)
    c.check("input follows pull-up", wait_for(lambda: read(f"{d}/value") == "1\n", EDGE))
    sim.pull(off, False)
    c.check("input follows pull-down", wait_for(lambda: read(f"{d}/value") == "0\n", EDGE))
    write(f"{d}/active_low", "1")
    c.eq("active_low inverts an input (pull-down reads 1)", read(f"{d}/value"), "1\n")
    sim.pull(off, True)
    c.check("active_low: pull-up reads 0", wait_for(lambda: read(f"{d}/value") == "0\n", EDGE))
    write(f"{d}/active_low", "0")
    write(f"{d}/direction", "high")
    c.eq("direction high: direction reads out", read(f"{d}/direction"), "out\n")
    c.eq("direction high drives the wire high (sim value)", sim.value(off), "1")
    c.eq("... and value reads 1", read(f"{d}/value"), "1\n")
    write(f"{d}/direction", "low")
    c.eq("direction low drives low", sim.value(off), "0")
    write(f"{d}/value", "1")
    c.eq("value 1 drives high", sim.value(off), "1")
    write(f"{d}/direction", "out")
    c.eq("direction out drives low", sim.value(off), "0")
    write(f"{d}/active_low", "1")
    c.eq("active_low 1 on an output: wire low reads 1", read(f"{d}/value"), "1\n")
    write(f"{d}/value", "1")
    c.eq("active_low 1: value 1 drives low", sim.value(off), "0")
    write(f"{d}/value", "0")
    c.eq("active_low 1: value 0 drives high", sim.value(off), "1")
    write(f"{d}/direction", "low")
    c.eq("active_low 1: direction low is a raw low", sim.value(off), "0")
    write(f"{d}/direction", "high")
    c.eq("active_low 1: direction high is a raw high", sim.value(off), "1")
    c.eq("... which reads 0", read(f"{d}/value"), "0\n")
    write(f"{d}/active_low", "0")
    write(f"{d}/direction", "in")
    sim.pull(off, False)
    c.check("back to input follows the pull", wait_for(lambda: read(f"{d}/value") == "0\n", EDGE))
    unexport(off)


def errnos():
    big = "99999999999999999999"
    ex, ux = f"{MNT}/export", f"{MNT}/unexport"
    for text, want in [("abc", E.EINVAL), ("", 0), ("-1", E.EINVAL), (str(g(len(NAMES))), E.EINVAL),
                       ("9999", E.EINVAL), (big, E.ERANGE), (f"{g(0)} ", E.EINVAL)]:
        c.errno_is(f"export {text!r}", werr(ex, text), want)
    for text, want in [("abc", E.EINVAL), ("-1", E.EINVAL), (str(g(0)), E.EINVAL),
                       ("9999", E.EINVAL), (big, E.ERANGE)]:
        c.errno_is(f"unexport {text!r}", werr(ux, text), want)
    export(0)
    d = gd(0)
    c.errno_is("export of an exported line: EBUSY", werr(ex, str(g(0))), E.EBUSY)
    for f, text in [("direction", "IN"), ("direction", "in\n\n"), ("direction", "inx"),
                    ("edge", "risin"), ("edge", "both "), ("active_low", "x"), ("active_low", " 1")]:
        c.errno_is(f"{f} {text!r}: EINVAL", werr(f"{d}/{f}", text), E.EINVAL)
    c.errno_is("active_low overflow: ERANGE", werr(f"{d}/active_low", big), E.ERANGE)
    c.errno_is("value 1 on an input: EPERM", werr(f"{d}/value", "1"), E.EPERM)
    c.errno_is("value junk on an input: EINVAL (text first, as Linux 6.17+)",
               werr(f"{d}/value", "junk"), E.EINVAL)
    write(f"{d}/direction", "out")
    c.errno_is("value junk on an output: EINVAL", werr(f"{d}/value", "junk"), E.EINVAL)
    c.errno_is("value overflow on an output: ERANGE", werr(f"{d}/value", big), E.ERANGE)
    c.errno_is("edge rising on an output: EIO", werr(f"{d}/edge", "rising"), E.EIO)
    c.errno_is("edge none on an output: ok", werr(f"{d}/edge", "none"), 0)
    write(f"{d}/direction", "in")
    write(f"{d}/edge", "both")
    c.errno_is("direction out while edge is set: ok (as 6.12)", werr(f"{d}/direction", "out"), 0)
    c.eq("... edge still reads both", read(f"{d}/edge"), "both\n")
    write(f"{d}/direction", "in")
    write(f"{d}/edge", "none")
    cd = f"{MNT}/gpiochip{BASE}"
    for f in ("base", "label", "ngpio"):
        c.errno_is(f"open {f} for writing: EACCES", open_errno(f"{cd}/{f}", os.O_WRONLY), E.EACCES)
    c.errno_is("open export for reading: EACCES", open_errno(ex, os.O_RDONLY), E.EACCES)
    c.errno_is("unlink export: EPERM", call_errno(os.unlink, ex), E.EPERM)
    c.errno_is("mkdir: EPERM", call_errno(os.mkdir, f"{MNT}/x"), E.EPERM)
    c.errno_is("mkdir in gpio<N>: EPERM", call_errno(os.mkdir, f"{d}/x"), E.EPERM)
    c.errno_is("create a file: EACCES", open_errno(f"{MNT}/x", os.O_CREAT | os.O_WRONLY), E.EACCES)
    c.errno_is("rmdir gpiochip<N>: ENOTDIR", call_errno(os.rmdir, cd), E.ENOTDIR)
    c.errno_is("rmdir gpio<N>: ENOTDIR", call_errno(os.rmdir, d), E.ENOTDIR)
    c.eq("uevent reads empty", read(f"{d}/uevent"), "")
    c.errno_is("uevent 'change': ok", werr(f"{d}/uevent", "change\n"), 0)
    c.errno_is("uevent junk: EINVAL", werr(f"{d}/uevent", "bogus"), E.EINVAL)
    unexport(0)
    c.errno_is("unexport of a line no longer exported: EINVAL", werr(ux, str(g(0))), E.EINVAL)


def polls():
    off = 3
    export(off)
    d = gd(off)
    sim.pull(off, False)
    write(f"{d}/edge", "both")
    fd = os.open(f"{d}/value", os.O_RDONLY)
    PRI = select.POLLPRI | select.POLLERR
    base_mask = select.POLLIN | select.POLLOUT | select.POLLRDNORM | select.POLLWRNORM
    c.eq("first poll after open: at once, with PRI|ERR", pollnames(poll1(fd)),
         pollnames(base_mask | PRI))
    os.pread(fd, 8, 0)
    c.eq("after a read: no PRI", pollnames(poll1(fd)), pollnames(base_mask))
    sim.pull(off, True)
    r = poll1(fd, EDGE, PRI)
    c.check("poll(POLLPRI|POLLERR) wakes on a rising edge", r & PRI == PRI, pollnames(r))
    c.eq("... and value reads 1", os.pread(fd, 8, 0), b"1\n")
    sim.pull(off, False)
    c.check("select() exceptfds wakes on a falling edge", select_x(fd, EDGE))
    os.pread(fd, 8, 0)
    c.check("... and is clear after a read", not select_x(fd, 0))
    # epoll, level- and edge-triggered, on two more open files
    fd_lt = os.open(f"{d}/value", os.O_RDONLY)
    fd_et = os.open(f"{d}/value", os.O_RDONLY)
    lt, et = select.epoll(), select.epoll()
    lt.register(fd_lt, select.EPOLLPRI)
    et.register(fd_et, select.EPOLLPRI | select.EPOLLET)
    os.pread(fd_lt, 8, 0)
    os.pread(fd_et, 8, 0)
    lt.poll(0)
    et.poll(0)
    sim.pull(off, True)
    c.check("epoll EPOLLPRI (level) wakes on an edge", bool(lt.poll(EDGE)))
    c.check("epoll EPOLLPRI|EPOLLET wakes on an edge", bool(et.poll(EDGE)))
    c.check("level-triggered: reported again while unread", bool(lt.poll(0)))
    c.check("edge-triggered: not reported again", not et.poll(0))
    os.pread(fd_lt, 8, 0)
    c.check("level-triggered: clear after a read", not lt.poll(0))
    r = poll1(fd, 0)
    c.check("the first open file saw the same edge (events are per open file)", r & PRI, pollnames(r))
    for f in (fd_lt, fd_et):
        os.close(f)
    lt.close()
    et.close()
    # several processes at once
    sim.pull(off, False)
    time.sleep(0.2)
    kids = []
    for _ in range(3):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                f = os.open(f"{d}/value", os.O_RDONLY)
                os.pread(f, 8, 0)
                os.write(wfd, b"r")
                p = select.poll()
                p.register(f, select.POLLPRI | select.POLLERR)
                os._exit(0 if p.poll(int(EDGE * 2000)) else 1)
            except BaseException:
                os._exit(2)
        os.close(wfd)
        os.read(rfd, 1)
        os.close(rfd)
        kids.append(pid)
    sim.pull(off, True)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]
    c.eq("3 processes polling the same line all wake on one edge", codes, [0, 0, 0])
    # which edges count
    os.pread(fd, 8, 0)
    for al, edge, up_counts, down_counts in [(0, "rising", True, False), (0, "falling", False, True),
                                             (1, "rising", False, True), (1, "falling", True, False),
                                             (0, "none", False, False), (1, "both", True, True)]:
        sim.pull(off, False)
        write(f"{d}/active_low", str(al))
        write(f"{d}/edge", edge)
        time.sleep(0.1)
        os.pread(fd, 8, 0)
        for up, counts in ((True, up_counts), (False, down_counts)):
            sim.pull(off, up)
            r = poll1(fd, EDGE if counts else QUIET, PRI)
            c.eq(f"active_low={al} edge={edge}: raw {'rising' if up else 'falling'} edge "
                 f"{'counts' if counts else 'does not count'}", bool(r & select.POLLPRI), counts)
            os.pread(fd, 8, 0)
    write(f"{d}/active_low", "0")
    # coalescing: two edges, one event
    write(f"{d}/edge", "both")
    sim.pull(off, False)
    time.sleep(0.2)
    os.pread(fd, 8, 0)
    sim.pull(off, True)
    time.sleep(0.3)
    sim.pull(off, False)
    time.sleep(0.3)
    c.check("two edges unread: POLLPRI", poll1(fd, 0) & select.POLLPRI)
    os.pread(fd, 8, 0)
    c.check("one read clears both (coalesced)", not poll1(fd, 0) & select.POLLPRI)
    # inotify
    ino = Inotify()
    ino.add(f"{d}/value", IN_MODIFY)
    ino.events(0.2)
    n = 0
    for up in (True, False, True):
        sim.pull(off, up)
        n += sum(1 for _, m, _ in ino.events(EDGE) if m & IN_MODIFY)
        time.sleep(0.1)
        n += sum(1 for _, m, _ in ino.events(0) if m & IN_MODIFY)
    c.eq("inotify: one IN_MODIFY on value per edge (edge both, 3 edges)", n, 3)
    write(f"{d}/edge", "rising")
    ino.events(0.3)
    sim.pull(off, False)
    c.eq("inotify: no IN_MODIFY for an edge that does not count", ino.events(QUIET), [])
    write(f"{d}/edge", "none")
    sim.pull(off, True)
    c.eq("inotify: no IN_MODIFY with edge none", ino.events(QUIET), [])
    ino.close()
    os.close(fd)
    unexport(off)


LINE_RE = re.compile(r"^(\d+) (\d+) (rising|falling) ([01])$")


def events():
    off = 4
    sim.pull(off, False)
    export(off)
    d = gd(off)
    write(f"{d}/edge", "none")  # events come whatever edge says
    fd = os.open(f"{d}/events", os.O_RDONLY)
    for up in (True, False, True):
        sim.pull(off, up)
        time.sleep(0.15)
    got = ""
    end = time.monotonic() + 2 * EDGE
    while got.count("\n") < 3 and time.monotonic() < end:
        if poll1(fd, 0.1, select.POLLIN) & select.POLLIN:
            got += os.read(fd, 4096).decode()
    lines = got.splitlines()
    m = [LINE_RE.match(x) for x in lines]
    c.check("events: three edges give three lines 'SEQNO TIMESTAMP_NS rising|falling VALUE'",
            len(lines) == 3 and all(m) and got.endswith("\n"), repr(got))
    if len(lines) == 3 and all(m):
        seq = [int(x.group(1)) for x in m]
        ts = [int(x.group(2)) for x in m]
        c.check("events: SEQNO counts up by one", seq[1] == seq[0] + 1 and seq[2] == seq[1] + 1,
                str(seq))
        c.check("events: timestamps increase", ts[0] < ts[1] < ts[2], str(ts))
        c.eq("events: kinds and values", [(x.group(3), x.group(4)) for x in m],
             [("rising", "1"), ("falling", "0"), ("rising", "1")])
    # non-blocking
    nb = os.open(f"{d}/events", os.O_RDONLY | os.O_NONBLOCK)
    c.errno_is("events O_NONBLOCK, empty: EAGAIN", call_errno(os.read, nb, 4096), E.EAGAIN)
    c.check("events poll, empty: no POLLIN", not poll1(nb, 0, select.POLLIN) & select.POLLIN)
    sim.pull(off, False)
    r = poll1(nb, EDGE, select.POLLIN)
    c.check("events poll: POLLIN once an edge is queued", r & select.POLLIN, pollnames(r))
    line = os.read(nb, 4096).decode()
    c.check("a file opened later sees only later edges", len(line.splitlines()) == 1
            and " falling 0" in line, repr(line))
    os.close(nb)
    os.read(fd, 4096)  # drain
    # a blocking read returns on an edge
    res = {}

    def reader(key, f):
        t = time.monotonic()
        try:
            res[key] = (os.read(f, 4096), time.monotonic() - t)
        except OSError as e:
            res[key] = (ename(e.errno), time.monotonic() - t)

    th = threading.Thread(target=reader, args=("edge", fd), daemon=True)
    th.start()
    time.sleep(0.5)
    c.check("events: read blocks while no edge", th.is_alive())
    sim.pull(off, True)
    th.join(EDGE)
    got = res.get("edge")
    c.check("events: the blocked read returns one line on an edge",
            got is not None and isinstance(got[0], bytes) and LINE_RE.match(got[0].decode().strip()),
            repr(got))
    # EOF after unexport
    th = threading.Thread(target=reader, args=("eof", fd), daemon=True)
    th.start()
    time.sleep(0.5)
    unexport(off)
    th.join(EDGE)
    c.eq("events: a blocked reader gets EOF on unexport", res.get("eof", ("blocked",))[0], b"")
    c.eq("events: later reads are EOF too", os.read(fd, 4096), b"")
    r = poll1(fd, 0, select.POLLIN)
    c.check("events: poll reports POLLHUP after unexport", r & select.POLLHUP, pollnames(r))
    os.close(fd)


def holders():
    if not gpiod_tools_run(sim.chip):
        c.note(f"libgpiod {gpiod_major()}'s tools need the v1 uAPI, which this kernel lacks "
               "(CONFIG_GPIO_CDEV_V1 off): gpioset and gpiomon are stood in for by v2 "
               "requests under their names, gpioinfo by the v2 line-info ioctl")
    for tool, off in (("gpioset", 5), ("gpiomon", 6)):
        release = gpio_holder(tool, sim.chip, off)
        try:
            c.errno_is(f"export of a line {tool} holds: EBUSY", werr(f"{MNT}/export", str(g(off))),
                       E.EBUSY)
            c.check(f"gpiofs's log names the holder ({tool})",
                    wait_for(lambda: tool in fs.log(), 2), fs.log()[-500:])
        finally:
            release()
        wait_for(lambda: not line_info(sim.chip, off)["flags"] & F_USED, 5)
        c.errno_is(f"export works once {tool} is gone", werr(f"{MNT}/export", str(g(off))), 0)
        unexport(off)
    fd = request_line(sim.chip, 7, "pyholder")
    try:
        c.errno_is("export of a line held through the ioctl: EBUSY",
                   werr(f"{MNT}/export", str(g(7))), E.EBUSY)
        c.check("gpiofs's log names the holder (pyholder)",
                wait_for(lambda: "pyholder" in fs.log(), 2), fs.log()[-500:])
    finally:
        os.close(fd)
    write("/sys/class/gpio/export", str(KBASE + 8))
    try:
        c.errno_is("export of a line the kernel's sysfs holds: EBUSY",
                   werr(f"{MNT}/export", str(g(8))), E.EBUSY)
        c.check("gpiofs's log names the holder (sysfs)",
                wait_for(lambda: "sysfs" in fs.log(), 2), fs.log()[-500:])
    finally:
        write("/sys/class/gpio/unexport", str(KBASE + 8))


FLAG_NAMES = {F_PULL_UP: "pull-up", F_PULL_DOWN: "pull-down", F_BIAS_DISABLED: "bias-disabled",
              F_OPEN_DRAIN: "open-drain", F_OPEN_SOURCE: "open-source"}


def consumer_and_reconfig():
    off = 9
    sim.pull(off, False)
    export(off)
    d = gd(off)
    info = line_info(sim.chip, off)
    c.eq("the kernel shows our --consumer label", info["consumer"], CONSUMER)
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows the --consumer label", f'"{CONSUMER}"' in row, row)
    watch = InfoWatch(sim.chip, [off])
    steps = []

    def step(what, path, text, flag=None, absent=(), want_value=None):
        e = werr(path, text)
        ok = c.errno_is(f"write {text!r} to {os.path.basename(path)}", e, 0)
        if not ok:
            return
        steps.append(what)
        info = line_info(sim.chip, off)
        c.eq(f"{what}: line still held by {CONSUMER}", (info["consumer"], bool(info["flags"] & F_USED)),
             (CONSUMER, True))
        if flag is not None:
            c.check(f"{what}: the kernel's line flags show it", info["flags"] & flag,
                    hex(info["flags"]))
        for f in absent:
            c.check(f"{what}: and not {FLAG_NAMES[f]}", not info["flags"] & f, hex(info["flags"]))
        if want_value is not None:
            c.check(f"{what}: value reads {want_value}",
                    wait_for(lambda: read(f"{d}/value") == f"{want_value}\n", EDGE),
                    read(f"{d}/value"))

    step("bias pull-up", f"{d}/bias", "pull-up", F_PULL_UP, want_value=1)
    c.eq("bias reads back", read(f"{d}/bias"), "pull-up\n")
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows pull-up and our consumer", "pull-up" in row and CONSUMER in row, row)
    step("bias pull-down", f"{d}/bias", "pull-down", F_PULL_DOWN, (F_PULL_UP,), want_value=0)
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows pull-down", "pull-down" in row and CONSUMER in row, row)
    step("bias disabled", f"{d}/bias", "disabled", F_BIAS_DISABLED, (F_PULL_DOWN,))
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows bias disabled", "disabled" in row and CONSUMER in row, row)
    step("bias as-is", f"{d}/bias", "as-is", None, (F_BIAS_DISABLED, F_PULL_UP, F_PULL_DOWN))
    step("edge both", f"{d}/edge", "both")
    step("debounce 1000us", f"{d}/debounce_us", "1000")
    c.eq("debounce_us reads back", read(f"{d}/debounce_us"), "1000\n")
    c.eq("the kernel's line info shows debounce 1000us", line_info(sim.chip, off)["debounce_us"], 1000)
    sim.pull(off, True)
    c.check("an edge still comes through with debounce on",
            wait_for(lambda: read(f"{d}/value") == "1\n", EDGE))
    step("debounce off", f"{d}/debounce_us", "0")
    c.eq("the kernel's line info shows no debounce", line_info(sim.chip, off)["debounce_us"], 0)
    step("edge none", f"{d}/edge", "none")
    step("active_low 1", f"{d}/active_low", "1")
    step("active_low 0", f"{d}/active_low", "0")
    step("direction out", f"{d}/direction", "out", F_OUTPUT)
    step("drive open-drain", f"{d}/drive", "open-drain", F_OPEN_DRAIN)
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows open-drain", "open-drain" in row and CONSUMER in row, row)
    step("drive open-source", f"{d}/drive", "open-source", F_OPEN_SOURCE, (F_OPEN_DRAIN,))
    row = gpioinfo_line(sim.chip, off)
    c.check("gpioinfo shows open-source", "open-source" in row and CONSUMER in row, row)
    step("drive push-pull", f"{d}/drive", "push-pull", None, (F_OPEN_DRAIN, F_OPEN_SOURCE))
    step("direction high", f"{d}/direction", "high", F_OUTPUT)
    c.eq("... the wire is high", sim.value(off), "1")
    step("direction in", f"{d}/direction", "in")
    for f, text in (("bias", "pull-sideways"), ("drive", "open"), ("debounce_us", "soon"),
                    ("debounce_us", "-1")):
        c.errno_is(f"{f} {text!r}: EINVAL", werr(f"{d}/{f}", text), E.EINVAL)
    changes = watch.changes(0.5)
    kinds = sorted({k for _, k, _ in changes})
    c.check(f"the kernel saw only reconfigurations across {len(steps)} changes, never a release "
            f"({len(changes)} line-info events: {kinds})",
            changes and all(k == "config" for _, k, _ in changes), repr(changes))
    c.check("gpioinfo still shows our consumer", CONSUMER in gpioinfo_line(sim.chip, off))
    unexport(off)
    changes = watch.changes(EDGE)
    c.check("unexport releases the line (the kernel reports it)",
            any(k == "released" for _, k, _ in changes), repr(changes))
    c.check("gpioinfo shows the line unused after unexport",
            CONSUMER not in gpioinfo_line(sim.chip, off))
    watch.close()


def dev_watch_masks():
    """The masks of gpiofs's inotify watches on /dev, from fdinfo."""
    dev = os.stat("/dev")
    masks = []
    fds = f"/proc/{fs.proc.pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{fs.proc.pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        for m in re.finditer(r"^inotify wd:\S+ ino:([0-9a-f]+) sdev:\S+ mask:([0-9a-f]+)", info, re.M):
            if int(m.group(1), 16) == dev.st_ino:
                masks.append(int(m.group(2), 16))
    return masks


def dev_watch():
    # A /dev watch with IN_ATTRIB makes every read and write of /dev/fuse
    # notify its parent: a cost on every FUSE request (issue 16). It is
    # only asked for while a chip waits to become openable.
    IN_ATTRIB, IN_CREATE = 0x4, 0x100
    c.check("gpiofs watches /dev for chips coming and going",
            wait_for(lambda: any(m & IN_CREATE for m in dev_watch_masks()), 2),
            repr(dev_watch_masks()))
    c.check("with every chip open, that watch leaves out IN_ATTRIB",
            wait_for(lambda: all(not m & IN_ATTRIB for m in dev_watch_masks()), 2),
            [hex(m) for m in dev_watch_masks()])


for part in (tree, export_unexport, values, errnos, polls, events, holders, consumer_and_reconfig,
             dev_watch):
    c.run(part)
c.check("gpiofs is still running", fs.alive(), fs.log()[-2000:])
rc = fs.stop()
c.eq("gpiofs exits 0 on SIGTERM", rc, 0)
c.check("and unmounts", not os.path.exists(f"{MNT}/export"))
os.makedirs(ARTIFACTS, exist_ok=True)
with open(os.path.join(ARTIFACTS, "gpiofs-real.log"), "w") as f:
    f.write(fs.log())
sim.remove()
c.finish()
