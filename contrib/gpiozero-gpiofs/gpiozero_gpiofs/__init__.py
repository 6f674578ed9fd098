"""A gpiozero pin factory over gpiofs, so that any number of gpiozero
programs share the Raspberry Pi's pins::

    GPIOZERO_PIN_FACTORY=gpiofs python3 app.py

Environment:

- ``GPIOFS_TREE``: where gpiofs is mounted (default ``/sys/class/gpio``).
- ``GPIOFS_CHIP_LABEL``: the label of the GPIO chip whose offsets are the
  BCM numbers (default: the first of pinctrl-rp1, pinctrl-bcm2711,
  pinctrl-bcm2835 in the tree).
- ``GPIOFS_PI_REVISION``: the board's revision code in hex (e.g. ``c03114``
  for a Pi 4B), for machines that are not Pis; otherwise it is read as
  gpiozero reads it (device tree, then /proc/cpuinfo).

Line settings (direction, bias, debounce) belong to the line and so are
shared by every process using it. Edges, when_changed and bounce filtering
are per process: each pin reads its own ``events`` stream and never
writes ``edge``. Closing a pin unexports its line only when ``holders``
shows no other process using it. PWM is software PWM (a thread writing
``value``), as lgpio and RPi.GPIO do it.
"""

import errno
import os
from threading import RLock

from gpiozero.exc import (
    PinFixedPull,
    PinInvalidBounce,
    PinInvalidEdges,
    PinInvalidFunction,
    PinInvalidPin,
    PinInvalidPull,
    PinInvalidState,
    PinPWMFixedValue,
    PinSetInput,
    PinUnknownPi,
)
from gpiozero.pins.local import LocalPiFactory, LocalPiPin

from .events import EventWatcher
from .pwm import SoftwarePWM
from .tree import Tree

__all__ = ['GpiofsFactory', 'GpiofsPin']

PULL_TO_BIAS = {'up': 'pull-up', 'down': 'pull-down', 'floating': 'disabled'}
BIAS_TO_PULL = {'pull-up': 'up', 'pull-down': 'down',
                'disabled': 'floating', 'as-is': 'floating'}
EDGES = ('both', 'rising', 'falling', 'none')


class GpiofsFactory(LocalPiFactory):
    """Pins of the Raspberry Pi's GPIO controller, through gpiofs.

    BCM number N is line N of the controller chip, whatever the chip's
    base in the tree (512, 571, or a ``--base``)."""

    def __init__(self, tree=None, chip_label=None):
        super().__init__()
        self.tree = Tree(tree or os.environ.get('GPIOFS_TREE', '/sys/class/gpio'))
        self.chip_label, self.base, self.ngpio = self.tree.controller(
            chip_label or os.environ.get('GPIOFS_CHIP_LABEL'))
        self.pin_class = GpiofsPin
        self._watcher = None

    def _get_revision(self):
        override = os.environ.get('GPIOFS_PI_REVISION')
        if override:
            return int(override, 16)
        try:
            return super()._get_revision()
        except (PinUnknownPi, OSError) as e:
            raise PinUnknownPi(
                f'{e}; on a machine that is not a Pi, set GPIOFS_PI_REVISION '
                f'to the revision code of the Pi to pretend to be '
                f'(e.g. c03114 for a Pi 4B)') from e

    @property
    def watcher(self):
        if self._watcher is None:
            self._watcher = EventWatcher()
        return self._watcher

    def close(self):
        super().close()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None


class GpiofsPin(LocalPiPin):
    """One line of the controller, exported in gpiofs while in use."""

    def __init__(self, factory, info):
        super().__init__(factory, info)
        if self._number >= factory.ngpio:
            raise PinInvalidPin(
                f'{info.name} is beyond the {factory.ngpio} lines of '
                f'{factory.chip_label}')
        self._global = factory.base + self._number
        self._dir = f'gpio{self._global}'
        self._value_fd = None
        self._events_fd = None
        self._active_low = False
        self._edges = 'both'
        self._bounce = None
        self._pwm = None
        # gpiozero may use a pin from several threads (blink, callbacks).
        self._lock = RLock()

    # -- the line in the tree --

    def _path(self, attr):
        return self.factory.tree.file(f'{self._dir}/{attr}')

    def _value(self):
        """The open ``value`` file, exporting the line first if needed."""
        with self._lock:
            if self._value_fd is None:
                self._value_fd = self._open_value()
                # The value file shows logical levels; gpiozero wants the
                # wire's.
                self._active_low = self._read('active_low') == '1'
            return self._value_fd

    def _open_value(self):
        path = self._path('value')
        for _ in range(10):
            try:
                try:
                    return os.open(path, os.O_RDWR | os.O_CLOEXEC)
                except PermissionError:
                    # Inputs need no write access.
                    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                # Not exported, or unexported by another process just now:
                # export (again).
                self.factory.tree.export(self._global)
        raise OSError(errno.ENOENT, f'cannot export {self._dir}')

    def _read(self, attr):
        self._value()
        with open(self._path(attr)) as f:
            return f.read().rstrip('\n')

    def _write(self, attr, text):
        self._value()
        with open(self._path(attr), 'w') as f:
            f.write(text)

    def close(self):
        self.when_changed = None
        self.frequency = None
        with self._lock:
            if self._value_fd is None:
                return
            os.close(self._value_fd)
            self._value_fd = None
            try:
                holders = self.factory.tree.holders(self._global)
                if not [pid for pid, _ in holders if pid != os.getpid()]:
                    self.factory.tree.unexport(self._global)
            except OSError:
                # The tree is gone (gpiofs stopped): nothing to unexport.
                pass

    # -- function and state --

    def _get_function(self):
        return 'output' if self._read('direction') == 'out' else 'input'

    def _set_function(self, value):
        if value not in ('input', 'output'):
            raise PinInvalidFunction(
                f'invalid function "{value}" for pin {self!r}')
        # Rewriting the direction a shared line already has would reset an
        # output another process drives.
        if self._get_function() != value:
            self._write('direction', 'in' if value == 'input' else 'out')

    def output_with_state(self, state):
        if self._get_function() == 'output':
            self._set_state(state)
        else:
            # Raw levels, set with the direction: no glitch.
            self._write('direction', 'high' if state else 'low')

    def _on_line(self, action):
        """Runs action(value fd); once more on a fresh export if the line
        was unexported under it (ENODEV)."""
        try:
            return action(self._value())
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
            with self._lock:
                os.close(self._value_fd)
                self._value_fd = None
            return action(self._value())

    def _get_state(self):
        if self._pwm:
            return self._pwm.duty
        level = self._on_line(lambda fd: os.pread(fd, 8, 0)) == b'1\n'
        return level != self._active_low

    def _set_state(self, value):
        if self._pwm:
            if not 0 <= value <= 1:
                raise PinInvalidState(f'invalid state "{value}" for pin {self!r}')
            self._pwm.set(duty=value)
            return
        self._set_level(value)

    def _set_level(self, value):
        text = b'1' if bool(value) != self._active_low else b'0'
        try:
            self._on_line(lambda fd: os.pwrite(fd, text, 0))
        except OSError as e:
            # EPERM: an input; EBADF: opened read-only (no write access).
            if e.errno not in (errno.EPERM, errno.EBADF):
                raise
            raise PinSetInput(f'cannot set state of pin {self!r}') from None

    # -- software PWM --

    def _get_frequency(self):
        return self._pwm.frequency if self._pwm else None

    def _set_frequency(self, value):
        if value and not self._pwm:
            if self.function != 'output':
                raise PinPWMFixedValue(f'cannot start PWM on pin {self!r}')
            self._pwm = SoftwarePWM(self._set_level, value)
        elif value:
            self._pwm.set(frequency=value)
        elif self._pwm:
            pwm, self._pwm = self._pwm, None
            pwm.stop()

    # -- pull and bounce: settings of the line, shared --

    def _get_pull(self):
        return BIAS_TO_PULL.get(self._read('bias'), 'floating')

    def _set_pull(self, value):
        if self.function != 'input':
            raise PinFixedPull(f'cannot set pull on non-input pin {self!r}')
        if self.info.pull not in (value, ''):
            raise PinFixedPull(
                f'{self!r} has a physical pull-{self.info.pull} resistor')
        try:
            bias = PULL_TO_BIAS[value]
        except KeyError:
            raise PinInvalidPull(f'invalid pull "{value}" for pin {self!r}')
        if self._read('bias') != bias:
            self._write('bias', bias)

    def _get_bounce(self):
        return self._bounce

    def _set_bounce(self, value):
        # gpiozero sets None on every new input: leave the line's debouncer,
        # which another process may rely on, alone then.
        if value is None:
            self._bounce = None
            return
        if value < 0:
            raise PinInvalidBounce('bounce must be 0 or greater')
        self._write('debounce_us', str(int(value * 1_000_000)))
        self._bounce = value or None

    # -- edges and callbacks, from this pin's own events stream --

    def _get_edges(self):
        return self._edges

    def _set_edges(self, value):
        if value not in EDGES:
            raise PinInvalidEdges(
                f'invalid edge specification "{value}" for pin {self!r}')
        self._edges = value

    def _enable_event_detect(self):
        self._value()
        self._events_fd = os.open(
            self._path('events'), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.factory.watcher.watch(self._events_fd, self)

    def _disable_event_detect(self):
        if self._events_fd is not None:
            self.factory.watcher.unwatch(self._events_fd)
            os.close(self._events_fd)
            self._events_fd = None

    def _events_arrived(self, events):
        """Called by the watcher thread with (seqno, ns, rising, value)."""
        for _, timestamp_ns, _, value in events:
            if self._edges == 'none' or self._when_changed is None:
                return
            state = value != self._active_low
            if self._edges == 'both' or state == (self._edges == 'rising'):
                self._call_when_changed(timestamp_ns / 1e9, state)
