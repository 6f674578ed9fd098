"""The gpiofs tree as files: finding the Pi's GPIO controller, export and
unexport, attributes, and who holds a line (``gpio<N>/holders``)."""

import errno
import os

from gpiozero.exc import BadPinFactory

#: The labels of the Raspberry Pi's header GPIO controllers, in the order
#: they are looked for: Pi 5 (RP1), Pi 4 / 400 / CM4, Pi 0-3.
PI_CONTROLLERS = ('pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835')


def _mount_of(path):
    """(mount point, filesystem type, source) of the mount holding *path*."""
    best = ('', '', '')
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace('\\040', ' ')
            sep = fields.index('-')
            fstype, source = fields[sep + 1], fields[sep + 2]
            inside = path == point or path.startswith(point.rstrip('/') + '/')
            if inside and len(point) >= len(best[0]):
                best = (point, fstype, source)
    return best


class Tree:
    """A mounted gpiofs tree at *path*."""

    def __init__(self, path):
        self.path = os.path.realpath(path)
        if not os.path.exists(os.path.join(self.path, 'export')):
            raise BadPinFactory(
                f'{path} is not a sysfs GPIO tree (it has no export file): '
                f'mount gpiofs there, or point GPIOFS_TREE at its mount')
        point, fstype, source = _mount_of(self.path)
        # gpiofs mounts as fuse.gpiofs, or as fuse with source "gpiofs".
        if 'fuse.gpiofs' not in (fstype, f'{fstype}.{source}'):
            raise BadPinFactory(
                f'{path} is a GPIO tree on {fstype or "an unknown filesystem"} '
                f'({point}), not gpiofs: the kernel\'s own sysfs cannot share '
                f'lines; run gpiofs there, or use another pin factory')

    def file(self, name):
        return os.path.join(self.path, name)

    def read(self, name):
        with open(self.file(name)) as f:
            return f.read().rstrip('\n')

    def write(self, name, text):
        with open(self.file(name), 'w') as f:
            f.write(text)

    def chips(self):
        """{label: (base, ngpio)} of every chip in the tree."""
        chips = {}
        for entry in sorted(os.listdir(self.path)):
            if entry.startswith('gpiochip'):
                label = self.read(f'{entry}/label')
                chips[label] = (int(self.read(f'{entry}/base')),
                                int(self.read(f'{entry}/ngpio')))
        return chips

    def controller(self, label=None):
        """(label, base, ngpio) of the chip labelled *label*, or of the first
        Raspberry Pi controller found."""
        chips = self.chips()
        wanted = (label,) if label else PI_CONTROLLERS
        for name in wanted:
            if name in chips:
                return (name, *chips[name])
        raise BadPinFactory(
            f'no GPIO chip labelled {" or ".join(wanted)} in {self.path} '
            f'(chips there: {", ".join(sorted(chips)) or "none"}); '
            f'set GPIOFS_CHIP_LABEL to the label of the chip to use')

    def export(self, number):
        """Exports line *number*; one already exported is fine."""
        try:
            self.write('export', str(number))
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise

    def unexport(self, number):
        try:
            self.write('unexport', str(number))
        except OSError as e:
            # Someone else unexported it already.
            if e.errno != errno.EINVAL:
                raise

    def holders(self, number):
        """[(pid, comm)] of the processes with files of line *number*
        open; empty if the line is not exported."""
        try:
            text = self.read(f'gpio{number}/holders')
        except FileNotFoundError:
            return []
        rows = []
        for row in text.splitlines():
            # COMM is the rest of the line: a command name may hold spaces.
            pid, _, comm = row.partition(' ')
            rows.append((int(pid), comm))
        return rows
