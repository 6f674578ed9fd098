"""Shared helpers of the real-kernel suite (runs INSIDE the test VM).

Checks print one line each, "ok - [PART] WHAT" or "FAIL - [PART] WHAT: DETAIL",
which tests/vm/run-suite.sh counts. Also here: gpio-sim chips (configfs),
the gpiofs daemon, inotify (ctypes), the GPIO chardev uAPI v2 (line info,
info watch, line requests) and libgpiod's command-line tools.
"""

import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
GPIOFS = os.environ.get("GPIOFS_BIN", os.path.join(REPO, "target", "release", "gpiofs"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ARTIFACTS = os.environ.get("GPIOFS_SUITE_ARTIFACTS", os.path.join(REPO, "target", "vm-suite"))
CONFIGFS = "/sys/kernel/config/gpio-sim"
WORK = "/tmp/vmsuite"  # private to the VM


def ename(e):
    """errno number -> name ('EINVAL'), 0 -> 'ok'."""
    if not e:
        return "ok"
    return errno.errorcode.get(e, str(e))


class Checks:
    """Counts and prints checks of one part of the suite."""

    def __init__(self, part):
        self.part = part
        self.passed = 0
        self.failed = 0

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok - [{self.part}] {what}", flush=True)
        else:
            self.failed += 1
            msg = f"FAIL - [{self.part}] {what}"
            if detail:
                msg += f": {detail}"
            print(msg, flush=True)
        return bool(cond)

    def eq(self, what, got, want):
        return self.check(what, got == want, f"got {got!r}, want {want!r}")

    def errno_is(self, what, got, want):
        """got: an errno number (0 = success); want: errno number or 0."""
        return self.check(what, got == want, f"got {ename(got)}, want {ename(want)}")

    def note(self, text):
        print(f"# [{self.part}] {text}", flush=True)

    def run(self, func, *args):
        """Run a group of checks; an exception is one failed check, not the end."""
        name = getattr(func, "__name__", "step")
        try:
            func(*args)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self.check(f"{name} ran to the end", False,
                       f"{type(e).__name__}: {e}\n" + "".join(
                           "#   " + line + "\n" for line in
                           traceback.format_exc().rstrip().splitlines()))

    def finish(self):
        """The part ran to its end: exit 0 (failures are counted from the
        printed lines; a non-zero exit means the part itself broke)."""
        print(f"# [{self.part}] {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0)


def load_blocks(path, fields, defaults):
    """Entries of a known-differences file: blocks separated by blank lines,
    one `FIELD: VALUE` a line, the first field starting a block; `#` lines
    are comments. Each entry is a dict with every field (defaults for the
    missing ones; all but the first and the last field may be missing) and
    `line`, where it starts."""
    entries, cur = [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.rstrip("\n")
            if not s.strip() or s.lstrip().startswith("#"):
                if cur and not s.strip():
                    entries.append(cur)
                    cur = None
                continue
            field, sep, value = s.partition(":")
            field = field.strip()
            if not sep or field not in fields:
                raise SystemExit(f"{path}:{n}: want '{'|'.join(fields)}: VALUE', got {s!r}")
            value = value.strip()
            if field == fields[0]:
                if cur:
                    entries.append(cur)
                cur = dict(defaults, **{fields[0]: value, fields[-1]: ""},
                           line=f"{os.path.basename(path)}:{n}")
            elif cur is None:
                raise SystemExit(f"{path}:{n}: '{field}:' before any '{fields[0]}:'")
            else:
                cur[field] = value
    if cur:
        entries.append(cur)
    for e in entries:
        missing = [k for k in fields if k not in e]
        if not e[fields[-1]] or missing:
            raise SystemExit(f"{e['line']}: entry {e[fields[0]]} lacks {missing or fields[-1]}")
    return entries


def wait_for(pred, timeout=5.0, step=0.02):
    """Poll pred() until true or timeout; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


# ------------------------------------------------------------------ file ops
def write_errno(path, data, flags=os.O_WRONLY, offset=None):
    """Write data (str/bytes) in one write() (after lseek to offset, if
    given); returns 0 or the errno."""
    if isinstance(data, str):
        data = data.encode()
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return e.errno
    try:
        if offset is not None:
            os.lseek(fd, offset, os.SEEK_SET)
        n = os.write(fd, data)
        if n != len(data):
            return -1  # short write: not an errno, never expected
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def write(path, data):
    e = write_errno(path, data)
    if e:
        raise OSError(e, f"write {data!r} to {path}: {os.strerror(e) if e > 0 else 'short write'}")


def read(path):
    with open(path, "rb", buffering=0) as f:
        return f.read().decode()


def read_errno(path):
    try:
        return read(path)
    except OSError as e:
        return ename(e.errno)


def open_errno(path, flags):
    try:
        os.close(os.open(path, flags))
        return 0
    except OSError as e:
        return e.errno


def call_errno(func, *args):
    try:
        func(*args)
        return 0
    except OSError as e:
        return e.errno


# -------------------------------------------------------------------- polls
POLL_NAMES = [(select.POLLIN, "IN"), (select.POLLPRI, "PRI"), (select.POLLOUT, "OUT"),
              (select.POLLERR, "ERR"), (select.POLLHUP, "HUP"), (select.POLLNVAL, "NVAL"),
              (select.POLLRDNORM, "RDNORM"), (select.POLLWRNORM, "WRNORM")]


def pollnames(mask):
    names = [n for bit, n in POLL_NAMES if mask & bit]
    return "|".join(names) if names else "-"


def poll1(fd, timeout=0.0, events=None):
    """poll() one fd; timeout in seconds; returns revents (0 on timeout)."""
    if events is None:
        events = (select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLERR
                  | select.POLLRDNORM | select.POLLWRNORM)
    p = select.poll()
    p.register(fd, events)
    r = p.poll(int(timeout * 1000))
    return r[0][1] if r else 0


def select1(fd, timeout=0.0):
    """select() with fd in all three sets -> 'r w x' flags string."""
    r, w, x = select.select([fd], [fd], [fd], timeout)
    return "".join(["r" if r else "-", "w" if w else "-", "x" if x else "-"])


def select_x(fd, timeout):
    """select() with fd in exceptfds only -> True when it is set."""
    _, _, x = select.select([], [], [fd], timeout)
    return bool(x)


def pread_errno(fd, n=64, off=0):
    try:
        return os.pread(fd, n, off).decode()
    except OSError as e:
        return ename(e.errno)


# ------------------------------------------------------------------ inotify
_libc = ctypes.CDLL(None, use_errno=True)
IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x1, 0x2, 0x4, 0x8
IN_CLOSE_NOWRITE, IN_OPEN, IN_MOVED_FROM, IN_MOVED_TO = 0x10, 0x20, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x2000, 0x4000, 0x8000, 0x40000000
IN_ALL_EVENTS = 0xFFF
IN_NAMES = [(IN_ACCESS, "ACCESS"), (IN_MODIFY, "MODIFY"), (IN_ATTRIB, "ATTRIB"),
            (IN_CLOSE_WRITE, "CLOSE_WRITE"), (IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"),
            (IN_OPEN, "OPEN"), (IN_MOVED_FROM, "MOVED_FROM"), (IN_MOVED_TO, "MOVED_TO"),
            (IN_CREATE, "CREATE"), (IN_DELETE, "DELETE"), (IN_DELETE_SELF, "DELETE_SELF"),
            (IN_MOVE_SELF, "MOVE_SELF"), (IN_UNMOUNT, "UNMOUNT"),
            (IN_Q_OVERFLOW, "Q_OVERFLOW"), (IN_IGNORED, "IGNORED"), (IN_ISDIR, "ISDIR")]


def in_names(mask):
    return "|".join(n for bit, n in IN_NAMES if mask & bit) or hex(mask)


class Inotify:
    def __init__(self):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.paths = {}

    def add(self, path, mask=IN_ALL_EVENTS):
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.paths[wd] = path
        return wd

    def events(self, timeout=0.0):
        """All events queued now (waiting up to timeout for the first):
        list of (wd, mask, name)."""
        out = []
        if not select.select([self.fd], [], [], timeout)[0]:
            return out
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            i = 0
            while i < len(buf):
                wd, mask, _cookie, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
                out.append((wd, mask, name))
                i += 16 + n

    def close(self):
        os.close(self.fd)


# ------------------------------------------------------------------ gpio-sim
class Sim:
    """One gpio-sim chip (one bank) whose label is its name."""

    def __init__(self, name, nlines, names=()):
        self.name = name
        self.nlines = nlines
        self.names = list(names)
        self.dir = os.path.join(CONFIGFS, name)
        self.create()

    def create(self):
        d = self.dir
        if os.path.exists(d):
            raise RuntimeError(f"sim {self.name} already exists")
        os.mkdir(d)
        os.mkdir(f"{d}/bank0")
        write(f"{d}/bank0/num_lines", str(self.nlines))
        write(f"{d}/bank0/label", self.name)
        for i, n in enumerate(self.names):
            if n:
                os.mkdir(f"{d}/bank0/line{i}")
                write(f"{d}/bank0/line{i}/name", n)
        write(f"{d}/live", "1")
        self.chip = read(f"{d}/bank0/chip_name").strip()
        self.dev = read(f"{d}/dev_name").strip()
        self.sysdir = f"/sys/devices/platform/{self.dev}/{self.chip}"
        if not wait_for(lambda: os.path.exists(f"/dev/{self.chip}"), 5):
            raise RuntimeError(f"/dev/{self.chip} did not appear")
        return self

    def live(self):
        return os.path.exists(self.dir) and read(f"{self.dir}/live").strip() == "1"

    def kernel_base(self):
        """Base of the chip in the kernel's /sys/class/gpio, or None."""
        for e in sorted(os.listdir("/sys/class/gpio")):
            if not e.startswith("gpiochip"):
                continue
            c = f"/sys/class/gpio/{e}"
            real = os.path.realpath(c)
            if (real.startswith(f"/sys/devices/platform/{self.dev}/")
                    and read(f"{c}/label").strip() == self.name):
                return int(read(f"{c}/base"))
        return None

    def pull_path(self, off):
        return f"{self.sysdir}/sim_gpio{off}/pull"

    def pull(self, off, up):
        write(self.pull_path(off), "pull-up" if up else "pull-down")

    def get_pull(self, off):
        return read(self.pull_path(off)).strip()

    def value(self, off):
        """What the sim sees on the wire: an output's level or the pull."""
        return read(f"{self.sysdir}/sim_gpio{off}/value").strip()

    def remove(self):
        d = self.dir
        if not os.path.exists(d):
            return
        if read(f"{d}/live").strip() == "1":
            write(f"{d}/live", "0")
        for sub in sorted(os.listdir(f"{d}/bank0")):
            p = f"{d}/bank0/{sub}"
            if sub.startswith("line") and os.path.isdir(p):
                if os.path.isdir(f"{p}/hog"):
                    os.rmdir(f"{p}/hog")
                os.rmdir(p)
        os.rmdir(f"{d}/bank0")
        os.rmdir(d)


def remove_all_sims():
    if not os.path.isdir(CONFIGFS):
        return
    for n in sorted(os.listdir(CONFIGFS)):
        s = Sim.__new__(Sim)
        s.name, s.dir = n, os.path.join(CONFIGFS, n)
        s.remove()


# ------------------------------------------------------------------- gpiofs
def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


class Gpiofs:
    """The daemon in the foreground, its log in a file."""

    def __init__(self, mnt, *args, log=None):
        self.mnt = mnt
        self.args = list(args)
        os.makedirs(WORK, exist_ok=True)
        self.logpath = log or os.path.join(WORK, os.path.basename(mnt) + ".log")
        self.proc = None

    def start(self, timeout=20):
        os.makedirs(self.mnt, exist_ok=True)
        logf = open(self.logpath, "ab")
        env = dict(os.environ, NO_COLOR="1")
        self.proc = subprocess.Popen([GPIOFS, *self.args, self.mnt], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, env=env)
        logf.close()
        ok = wait_for(lambda: self.proc.poll() is not None
                      or (is_mounted(self.mnt) and os.path.exists(f"{self.mnt}/export")), timeout)
        if self.proc.poll() is not None or not ok:
            rc = self.proc.poll()
            self.stop()
            raise RuntimeError(f"gpiofs {' '.join(self.args)} {self.mnt} did not mount "
                               f"(exit {rc}); log:\n{self.log()}")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], check=False)
        self.proc = None
        return rc


# ------------------------------------------------------- GPIO uAPI v2 (ioctl)
def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (0xB4 << 8) | nr


LINE_INFO_SIZE = 256
GET_LINEINFO = _iowr(0x05, LINE_INFO_SIZE)
GET_LINEINFO_WATCH = _iowr(0x06, LINE_INFO_SIZE)
LINE_REQUEST_SIZE = 592
GET_LINE = _iowr(0x07, LINE_REQUEST_SIZE)
F_USED, F_ACTIVE_LOW, F_INPUT, F_OUTPUT = 1 << 0, 1 << 1, 1 << 2, 1 << 3
F_EDGE_RISING, F_EDGE_FALLING, F_OPEN_DRAIN, F_OPEN_SOURCE = 1 << 4, 1 << 5, 1 << 6, 1 << 7
F_PULL_UP, F_PULL_DOWN, F_BIAS_DISABLED = 1 << 8, 1 << 9, 1 << 10
ATTR_FLAGS, ATTR_VALUES, ATTR_DEBOUNCE = 1, 2, 3
CHANGED = {1: "requested", 2: "released", 3: "config"}


def _decode_info(buf):
    name, consumer, offset, nattrs, flags = struct.unpack_from("32s32sIIQ", buf, 0)
    debounce = 0
    for i in range(min(nattrs, 10)):
        aid, _pad, val = struct.unpack_from("IIQ", buf, 80 + 16 * i)
        if aid == ATTR_DEBOUNCE:
            debounce = val & 0xFFFFFFFF
    return {"name": name.rstrip(b"\0").decode(), "consumer": consumer.rstrip(b"\0").decode(),
            "offset": offset, "flags": flags, "debounce_us": debounce}


def line_info(chip, offset):
    """GPIO_V2_GET_LINEINFO_IOCTL on /dev/CHIP."""
    fd = os.open(f"/dev/{chip}", os.O_RDONLY)
    try:
        buf = bytearray(LINE_INFO_SIZE)
        struct.pack_into("I", buf, 64, offset)
        fcntl.ioctl(fd, GET_LINEINFO, buf)
        return _decode_info(buf)
    finally:
        os.close(fd)


class InfoWatch:
    """GPIO_V2_GET_LINEINFO_WATCH_IOCTL: every request, release and
    reconfiguration of the watched lines, as the kernel reports them."""

    def __init__(self, chip, offsets):
        self.fd = os.open(f"/dev/{chip}", os.O_RDONLY | os.O_NONBLOCK)
        for off in offsets:
            buf = bytearray(LINE_INFO_SIZE)
            struct.pack_into("I", buf, 64, off)
            fcntl.ioctl(self.fd, GET_LINEINFO_WATCH, buf)

    def changes(self, timeout=0.0):
        """[(offset, 'requested'|'released'|'config', consumer), ...] queued now."""
        out = []
        if not select.select([self.fd], [], [], timeout)[0]:
            return out
        while True:
            try:
                buf = os.read(self.fd, 288 * 16)
            except BlockingIOError:
                return out
            for i in range(0, len(buf), 288):
                info = _decode_info(buf[i:i + 256])
                etype = struct.unpack_from("I", buf, i + 264)[0]
                out.append((info["offset"], CHANGED.get(etype, etype), info["consumer"]))

    def close(self):
        os.close(self.fd)


def request_line(chip, offset, consumer, output=False):
    """GPIO_V2_GET_LINE_IOCTL: hold one line; returns the request fd."""
    buf = bytearray(LINE_REQUEST_SIZE)
    struct.pack_into("I", buf, 0, offset)
    struct.pack_into("32s", buf, 256, consumer.encode())
    struct.pack_into("Q", buf, 288, F_OUTPUT if output else F_INPUT)
    struct.pack_into("I", buf, 560, 1)  # num_lines
    chipfd = os.open(f"/dev/{chip}", os.O_RDONLY)
    try:
        fcntl.ioctl(chipfd, GET_LINE, buf)
    finally:
        os.close(chipfd)
    return struct.unpack_from("i", buf, 588)[0]


# --------------------------------------------------------- libgpiod tools
def gpiod_major():
    try:
        out = subprocess.run(["gpioinfo", "--version"], capture_output=True, text=True,
                             check=False).stdout
    except FileNotFoundError:
        return None
    for word in out.split():
        if word.startswith("v") and word[1:2].isdigit():
            return int(word[1:].split(".")[0])
    return None


def gpioinfo_cmd(chip):
    return ["gpioinfo", chip] if gpiod_major() == 1 else ["gpioinfo", "-c", chip]


_TOOLS_RUN = {}


def gpiod_tools_run(chip):
    """Whether libgpiod's tools work on this kernel: libgpiod 1.x (Debian
    bookworm's) speaks the v1 uAPI, which kernels built without
    CONFIG_GPIO_CDEV_V1 (Debian's 7.x) refuse with EINVAL."""
    if chip not in _TOOLS_RUN:
        r = subprocess.run(gpioinfo_cmd(chip), capture_output=True, check=False)
        _TOOLS_RUN[chip] = r.returncode == 0
    return _TOOLS_RUN[chip]


def gpioinfo_line(chip, offset):
    """The line's row in `gpioinfo` (libgpiod 1.x or 2.x); where the tools
    cannot run (gpiod_tools_run), the same facts (name, consumer, flags)
    from the v2 line-info ioctl."""
    if not gpiod_tools_run(chip):
        info = line_info(chip, offset)
        flags = " ".join(n for f, n in ((F_USED, "used"), (F_OUTPUT, "output"),
                                        (F_INPUT, "input"), (F_ACTIVE_LOW, "active-low"),
                                        (F_OPEN_DRAIN, "open-drain"),
                                        (F_OPEN_SOURCE, "open-source"), (F_PULL_UP, "pull-up"),
                                        (F_PULL_DOWN, "pull-down"),
                                        (F_BIAS_DISABLED, "bias-disabled")) if info["flags"] & f)
        return f'line {offset}: "{info["name"]}" "{info["consumer"]}" {flags}'
    cmd = gpioinfo_cmd(chip)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for row in out.splitlines():
        s = row.strip()
        if s.startswith("line") and s.split(":")[0].split()[-1] == str(offset):
            return s
    raise RuntimeError(f"no line {offset} in `{' '.join(cmd)}`:\n{out}")


def gpio_holder(tool, chip, offset):
    """Start gpioset (output) or gpiomon (input) holding chip:offset; where
    the tools cannot run (gpiod_tools_run), hold it with the v2 ioctl under
    the tool's name. Returns the function that lets it go."""
    if not gpiod_tools_run(chip):
        fd = request_line(chip, offset, tool, output=tool == "gpioset")
        return lambda: os.close(fd)
    major = gpiod_major()
    if tool == "gpioset":
        cmd = (["gpioset", "--mode=signal", chip, f"{offset}=0"] if major == 1
               else ["gpioset", "-c", chip, f"{offset}=0"])
    else:
        cmd = ["gpiomon", chip, str(offset)] if major == 1 else ["gpiomon", "-c", chip, str(offset)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    wait_for(lambda: p.poll() is not None or line_info(chip, offset)["flags"] & F_USED, 10)
    if p.poll() is not None:
        raise RuntimeError(f"{' '.join(cmd)} exited: {p.stderr.read().decode()}")
    return lambda: stop_proc(p)


def stop_proc(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
