"""One thread per factory that reads the ``events`` streams of the pins
with callbacks and calls them back, with the kernel's timestamps."""

import errno
import os
import select
import traceback
from threading import Thread, RLock, current_thread


def parse(data):
    """Yields (seqno, timestamp_ns, rising, value) from whole event lines
    (``SEQNO TIMESTAMP_NS rising|falling VALUE``)."""
    for line in data.decode('ascii').splitlines():
        seqno, timestamp, kind, value = line.split(' ')
        yield int(seqno), int(timestamp), kind == 'rising', value == '1'


class EventWatcher(Thread):
    """Waits on every watched ``events`` file at once (epoll) and hands
    what each gives to its pin."""

    def __init__(self):
        super().__init__(name='gpiofs-events', daemon=True)
        self._epoll = select.epoll()
        self._lock = RLock()
        self._pins = {}
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._stopping = False
        self.start()

    def watch(self, fd, pin):
        with self._lock:
            self._pins[fd] = pin
            self._epoll.register(fd, select.EPOLLIN)

    def unwatch(self, fd):
        """Stops handing *fd*'s events out; the caller may close it once
        this returns."""
        with self._lock:
            if self._pins.pop(fd, None) is not None:
                self._epoll.unregister(fd)

    def close(self):
        with self._lock:
            self._stopping = True
        os.write(self._wake_w, b'x')
        # A callback may close the factory: its own thread cannot wait for
        # itself.
        if current_thread() is not self:
            self.join()
            self._epoll.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def run(self):
        while not self._stopping:
            try:
                ready = self._epoll.poll()
            except InterruptedError:
                continue
            for fd, _ in ready:
                if fd == self._wake_r:
                    continue
                # Read under the lock, so that unwatch+close cannot pull
                # the descriptor out from under the read; call back outside.
                with self._lock:
                    pin = self._pins.get(fd)
                    if pin is None:
                        continue
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        # ENODEV: the line is gone (unexported elsewhere).
                        if e.errno != errno.ENODEV:
                            raise
                        data = b''
                    if not data:
                        self.unwatch(fd)
                        continue
                try:
                    pin._events_arrived(parse(data))
                except Exception:
                    # One failing callback must not stop every other pin's.
                    traceback.print_exc()
