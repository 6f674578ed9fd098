"""Software PWM: a thread that writes a pin's ``value`` high and low, as
lgpio and RPi.GPIO do in their own threads (the character device, and so
gpiofs, has no PWM)."""

import time
from threading import Event, Lock, Thread


class SoftwarePWM(Thread):
    """Drives *write(level)* at *frequency* Hz with *duty* (0..1) high."""

    def __init__(self, write, frequency, duty=0.0):
        super().__init__(name='gpiofs-pwm', daemon=True)
        self._write = write
        self._lock = Lock()
        self._frequency = frequency
        self._duty = duty
        self._stop_evt = Event()
        self.start()

    @property
    def frequency(self):
        return self._frequency

    @property
    def duty(self):
        return self._duty

    def set(self, frequency=None, duty=None):
        with self._lock:
            if frequency is not None:
                self._frequency = frequency
            if duty is not None:
                self._duty = duty

    def stop(self):
        """Ends the thread and leaves the pin low."""
        self._stop_evt.set()
        self.join()
        self._write(False)

    def run(self):
        level = None
        # Deadlines are absolute, so that the time the writes take does
        # not stretch the period.
        start = time.monotonic()
        while not self._stop_evt.is_set():
            with self._lock:
                period = 1 / self._frequency
                high = self._duty * period
            if high > 0 and level is not True:
                self._write(True)
                level = True
            if high > 0 and self._stop_evt.wait(max(0, start + high - time.monotonic())):
                break
            if high < period and level is not False:
                self._write(False)
                level = False
            start += period
            now = time.monotonic()
            if start < now:  # fell behind (a busy machine): start afresh
                start = now
            if self._stop_evt.wait(max(0, start - now)):
                break
