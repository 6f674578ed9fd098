"""Plain gpiozero programs the tests run as separate processes, with
GPIOZERO_PIN_FACTORY=gpiofs. They talk to the test over stdin/stdout, one
line at a time.

    clients.py watch [EXIT_AFTER]   Button(17): counts presses, releases and
                                    holds; prints "ready", then on "stop N"
                                    waits (bounded) for N presses and prints
                                    "presses P releases R held H". With
                                    EXIT_AFTER it exits by itself after that
                                    many presses, mid-stream.
    clients.py devices              one process, one device at a time on
                                    17 with LED(27) driving it: asserts,
                                    prints "devices ok".
    clients.py drive N [LONG]       LED(27) wired to 17 (active low, a press
                                    pulls 17 down): N presses, each waited
                                    for on its own Button(17), then LONG
                                    presses of 0.5 s; prints "done P".
"""

import os
import sys
import threading
import time

from gpiozero import (
    LED, PWMLED, Button, Device, DigitalInputDevice, DigitalOutputDevice,
    LineSensor, MotionSensor,
)


def say(*words):
    print(*words, flush=True)


def watch(exit_after=None):
    counts = {'presses': 0, 'releases': 0, 'held': 0}
    lock = threading.Lock()
    done = threading.Event()

    def bump(name):
        with lock:
            counts[name] += 1
            if name == 'presses' and counts[name] == exit_after:
                done.set()

    button = Button(17, hold_time=0.2)
    button.when_pressed = lambda: bump('presses')
    button.when_released = lambda: bump('releases')
    button.when_held = lambda: bump('held')
    say('ready')
    if exit_after is not None:
        done.wait(60)
        say('exiting', counts['presses'])
        return  # gpiozero closes the button at exit
    for line in sys.stdin:
        if line.startswith('stop'):
            want = int(line.split()[1])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with lock:
                    if counts['releases'] >= want:
                        break
                time.sleep(0.01)
            time.sleep(0.2)  # anything beyond want would show up by now
            with lock:
                say('presses', counts['presses'], 'releases', counts['releases'],
                    'held', counts['held'])
            return


def drive(presses, long_presses=0):
    led = LED(27, active_high=False)
    own = Button(17)
    pressed, released = threading.Event(), threading.Event()
    own.when_pressed = pressed.set
    own.when_released = released.set
    seen = 0
    for i in range(presses + long_presses):
        pressed.clear()
        released.clear()
        led.on()
        if not pressed.wait(5):
            say('lost press', i)
            return
        if i >= presses:
            time.sleep(0.5)
        led.off()
        if not released.wait(5):
            say('lost release', i)
            return
        seen += 1
        time.sleep(0.002)  # a modest pace: about 250 presses a second at most
    say('done', seen)
    sys.stdin.readline()  # stay (holding both lines) until told


def expect(what, got, want):
    if got != want:
        raise AssertionError(f'{what}: got {got!r}, want {want!r}')
    say('ok', what)


def settle(device, attr, want):
    """Waits (bounded) for a sampled device's attribute to become *want*."""
    deadline = time.monotonic() + 3
    while getattr(device, attr) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return getattr(device, attr)


def devices():
    tree = os.environ['GPIOFS_TREE']
    drive_pin = DigitalOutputDevice(27)  # active high: on drives 17 high
    expect('board', Device.pin_factory.board_info.model, '4B')
    for name in (17, 'GPIO17', 'BCM17', 'BOARD11', 'J8:11'):
        expect(f'pin {name!r} is GPIO17', Device.pin_factory.pin(name).info.name, 'GPIO17')

    button = Button(17, pull_up=False, bounce_time=0.001)
    base = Device.pin_factory.base
    with open(f'{tree}/gpio{base + 17}/bias') as f:
        expect('pull_up=False is bias pull-down', f.read(), 'pull-down\n')
    with open(f'{tree}/gpio{base + 17}/debounce_us') as f:
        expect('bounce_time=0.001 is debounce_us 1000', f.read(), '1000\n')
    expect('released while 27 is low', button.is_pressed, False)
    threading.Timer(0.2, drive_pin.on).start()
    expect('wait_for_press', button.wait_for_press(timeout=5), True)
    threading.Timer(0.2, drive_pin.off).start()
    expect('wait_for_release', button.wait_for_release(timeout=5), True)
    button.close()

    repeating = Button(17, pull_up=False, hold_time=0.1, hold_repeat=True)
    holds = []
    repeating.when_held = lambda: holds.append(repeating.held_time)
    drive_pin.on()
    time.sleep(0.55)
    drive_pin.off()
    repeating.wait_for_release(5)
    expect('hold_repeat fires again while held', len(holds) >= 2, True)
    expect('held_time grows', holds == sorted(holds), True)
    repeating.close()

    dev = DigitalInputDevice(17, pull_up=None, active_state=True)
    activated = threading.Event()
    dev.when_activated = activated.set
    drive_pin.on()
    expect('DigitalInputDevice when_activated', activated.wait(5), True)
    expect('DigitalInputDevice value', dev.value, 1)
    drive_pin.off()
    expect('DigitalInputDevice value after off', settle(dev, 'value', 0), 0)
    dev.close()

    motion = MotionSensor(17, sample_rate=100)
    drive_pin.on()
    expect('MotionSensor motion_detected', settle(motion, 'motion_detected', True), True)
    drive_pin.off()
    expect('MotionSensor quiet', settle(motion, 'motion_detected', False), False)
    motion.close()

    line = LineSensor(17, pull_up=False)
    drive_pin.on()
    expect('LineSensor value high', settle(line, 'value', 1), 1)
    drive_pin.off()
    expect('LineSensor value low', settle(line, 'value', 0), 0)
    line.close()

    led = LED(17)  # 17 as an output: state reads back what it drives
    led.on()
    expect('LED is_lit', led.is_lit, True)
    led.toggle()
    expect('LED toggled', led.value, 0)
    led.close()

    drive_pin.close()
    pwm_checks(f'{tree}/gpio{base + 17}/events')


def high_fraction(events_path, seconds):
    """(rising edges, fraction of time high) seen on a line's events
    stream over *seconds*."""
    fd = os.open(events_path, os.O_RDONLY | os.O_NONBLOCK)
    time.sleep(seconds)
    data = b''
    while True:
        try:
            data += os.read(fd, 65536)
        except BlockingIOError:
            break
    os.close(fd)
    events = [line.split() for line in data.decode().splitlines()]
    stamps = [(int(ts), value == '1') for _, ts, _, value in events]
    high = sum(b[0] - a[0] for a, b in zip(stamps, stamps[1:]) if a[1])
    span = stamps[-1][0] - stamps[0][0] if len(stamps) > 1 else 0
    return sum(1 for _, v in stamps if v), high / span if span else 0


def pwm_checks(events_of_17):
    """PWMLED(27) wired to 17: software PWM shows on the wire."""
    watcher = DigitalInputDevice(17, pull_up=None, active_state=True)
    led = PWMLED(27, frequency=100)
    expect('PWMLED frequency', led.frequency, 100)
    expect('PWMLED off', led.value, 0)
    led.value = 0.25
    rising, duty = high_fraction(events_of_17, 0.5)
    say('info', f'PWM 100 Hz, value 0.25: {rising} periods in 0.5 s, duty {duty:.3f}')
    expect('PWM makes periods (50 in 0.5 s on an idle machine)', 10 <= rising <= 60, True)
    expect('PWM duty is near 0.25', 0.1 <= duty <= 0.4, True)
    led.value = 1
    expect('PWMLED value 1', led.value, 1)
    time.sleep(0.05)  # the period under way ends first
    rising, duty = high_fraction(events_of_17, 0.1)
    expect('value 1 holds the line high', (rising, watcher.value), (0, 1))
    led.close()
    expect('closing PWMLED leaves 27 low', settle(watcher, 'value', 0), 0)
    watcher.close()
    say('devices ok')


if __name__ == '__main__':
    role, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {'watch': watch, 'drive': drive, 'devices': devices}[role](*args)
