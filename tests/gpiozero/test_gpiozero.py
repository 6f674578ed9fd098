"""The real gpiozero (from PyPI) on gpiofs --sim, through the gpiofs pin
factory: several processes share pins, holders says who uses a line, and
closing in one process never disturbs another.

Run by run.sh with the venv's python; prints one line per check and a
closing `gpiozero: N passed, M failed`.
"""

import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GPIOFS = ROOT / 'target' / 'release' / 'gpiofs'
CLIENTS = Path(__file__).with_name('clients.py')
PI4 = 'c03114'  # a Raspberry Pi 4B: the board gpiozero is told it runs on
PRESSES = 1000
EXIT_AFTER = 400


class Daemon:
    """gpiofs with *args* on a fresh mount point, stopped on exit."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix='gpiofs-gpiozero-')
        self.mnt = os.path.join(self.dir, 'mnt')
        os.mkdir(self.mnt)
        self.log = open(os.path.join(self.dir, 'gpiofs.log'), 'w')
        self.proc = subprocess.Popen([str(GPIOFS), *args, self.mnt],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while not os.path.exists(os.path.join(self.mnt, 'export')):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'gpiofs {args} did not mount: {self.log_text()}')
            time.sleep(0.01)

    def log_text(self):
        return Path(self.log.name).read_text()

    def env(self, **extra):
        env = dict(os.environ, GPIOZERO_PIN_FACTORY='gpiofs',
                   GPIOFS_TREE=self.mnt, GPIOFS_PI_REVISION=PI4)
        env.update(extra)
        return env

    def holders(self, line):
        try:
            text = Path(self.mnt, f'gpio{line}', 'holders').read_text()
        except FileNotFoundError:
            return None
        return {int(pid): comm for pid, _, comm in
                (row.partition(' ') for row in text.splitlines())}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(['umount', '-l', self.mnt], stderr=subprocess.DEVNULL)


class Client:
    """One clients.py process."""

    def __init__(self, daemon, *args, **env):
        self.proc = subprocess.Popen(
            [sys.executable, str(CLIENTS), *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=daemon.env(**env))
        self.pid = self.proc.pid

    def line(self):
        text = self.proc.stdout.readline().strip()
        if not text:
            self.proc.wait(10)
            raise AssertionError(f'client {self.pid} ended (exit {self.proc.returncode})')
        return text

    def send(self, text):
        self.proc.stdin.write(text + '\n')
        self.proc.stdin.flush()

    def finish(self):
        self.proc.stdin.close()
        return self.proc.wait(10)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def expect(what, got, want):
    if got != want:
        raise AssertionError(f'{what}: got {got!r}, want {want!r}')


def wait_for(what, fn, want, timeout=5):
    deadline = time.monotonic() + timeout
    while fn() != want and time.monotonic() < deadline:
        time.sleep(0.02)
    expect(what, fn(), want)


def sim_pi4(*extra):
    """A Pi 4's controller (58 lines at 512) with GPIO27 wired to GPIO17."""
    return Daemon('--sim', 'pinctrl-bcm2711:58', '--sim-wire', '539:529', *extra)


def test_presses_are_seen_by_every_process():
    with sim_pi4() as d:
        clients = []
        try:
            a, b = Client(d, 'watch'), Client(d, 'watch')
            early = Client(d, 'watch', EXIT_AFTER)
            clients += [a, b, early]
            for c in clients:
                expect(f'client {c.pid} starts', c.line(), 'ready')
            driver = Client(d, 'drive', PRESSES, 3)
            clients.append(driver)
            pids = {c.pid for c in clients}
            wait_for('holders of GPIO17 lists the four processes',
                     lambda: set(d.holders(529) or ()), pids)
            expect('each is named by its command', set(d.holders(529).values()),
                   {Path(sys.executable).name[:15]})  # TASK_COMM_LEN
            expect('holders of GPIO27 is the driver', set(d.holders(539)), {driver.pid})

            words = early.line().split()
            expect('the early process exits mid-stream', words[0], 'exiting')
            expect('... after its presses', int(words[1]) >= EXIT_AFTER, True)
            print(f'    early watcher (pid {early.pid}): exited after {words[1]} presses')
            expect('its exit code', early.proc.wait(10), 0)
            wait_for('holders drops it', lambda: set(d.holders(529)), pids - {early.pid})
            pids.discard(early.pid)

            expect('driver', driver.line(), f'done {PRESSES + 3}')
            for name, c in (('A', a), ('B', b)):
                c.send(f'stop {PRESSES + 3}')
                report = c.line()
                print(f'    watcher {name} (pid {c.pid}): {report}')
                expect(f'watcher {name} saw every press',
                       report, f'presses {PRESSES + 3} releases {PRESSES + 3} held 3')
                expect(f'watcher {name} exits', c.proc.wait(10), 0)
                pids.discard(c.pid)
                wait_for(f'holders drops watcher {name}', lambda: set(d.holders(529)), pids)
            expect('driver exits', driver.finish(), 0)
            wait_for('the last holder unexports GPIO17', lambda: d.holders(529), None)
            wait_for('... and GPIO27', lambda: d.holders(539), None)
        finally:
            for c in clients:
                c.kill()


def test_one_process_devices():
    with sim_pi4() as d:
        out = subprocess.run([sys.executable, str(CLIENTS), 'devices'],
                             env=d.env(), capture_output=True, text=True, timeout=60)
        for line in out.stdout.splitlines():
            print('    ' + line)
        expect('devices', (out.returncode, out.stdout.splitlines()[-1:], out.stderr),
               (0, ['devices ok'], ''))
        expect('nothing left exported', sorted(p.name for p in Path(d.mnt).glob('gpio[0-9]*')), [])


def test_any_base_and_a_pi5_controller():
    # RP1 after another chip: its base is 528, so GPIO17 is line 545.
    with Daemon('--sim', 'other:16,pinctrl-rp1:54', '--sim-wire', '555:545') as d:
        code = ('from gpiozero import Button, LED\n'
                'b = Button(17); led = LED(27, active_high=False)\n'
                'led.on(); assert b.wait_for_press(5); led.off()\n'
                'assert b.wait_for_release(5); print(b.pin_factory.base)\n')
        out = subprocess.run([sys.executable, '-c', code], env=d.env(GPIOFS_PI_REVISION='d04170'),
                             capture_output=True, text=True, timeout=30)
        expect('Button and LED on pinctrl-rp1 at base 528',
               (out.returncode, out.stdout, out.stderr), (0, '528\n', ''))


def factory_error(env):
    code = 'from gpiozero import Button\nButton(17)\n'
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, timeout=30)
    return out.returncode, out.stderr.strip().splitlines()[-1:]


def test_clear_errors():
    with sim_pi4() as d:
        code, last = factory_error(d.env(GPIOFS_TREE='/nonexistent'))
        expect('no tree', (code, 'is not a sysfs GPIO tree' in str(last)), (1, True))
        with tempfile.TemporaryDirectory() as fake:
            Path(fake, 'export').touch()
            code, last = factory_error(d.env(GPIOFS_TREE=fake))
            expect('a tree that is not gpiofs', (code, 'not gpiofs' in str(last)), (1, True))
        code, last = factory_error(d.env(GPIOFS_CHIP_LABEL='pinctrl-rp1'))
        expect('no such chip', (code, 'chips there: pinctrl-bcm2711' in str(last)), (1, True))
        if not os.path.exists('/proc/device-tree/system/linux,revision'):
            env = d.env()
            del env['GPIOFS_PI_REVISION']
            code, last = factory_error(env)
            expect('not a Pi', (code, 'GPIOFS_PI_REVISION' in str(last)), (1, True))


def main():
    if not GPIOFS.exists():
        print(f'{GPIOFS} is missing: build it first (cargo build --release)')
        return 1
    tests = [(name, fn) for name, fn in globals().items() if name.startswith('test_')]
    passed = failed = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn()
        except Exception:
            failed += 1
            print(f'FAIL {name}\n{traceback.format_exc()}', flush=True)
        else:
            passed += 1
            print(f'ok   {name} ({time.monotonic() - start:.1f} s)', flush=True)
    print(f'gpiozero: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
