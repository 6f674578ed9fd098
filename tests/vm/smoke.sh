#!/usr/bin/env bash
# tests/vm/smoke.sh: proves the VM harness works. Run it through run.sh:
#   bash tests/vm/run.sh -- bash tests/vm/smoke.sh
# Creates an 8-line gpio-sim chip, checks the chardev and the kernel's legacy
# sysfs (/sys/class/gpio), exports a line, sets edge=both, drives it with the
# sim's pull and checks the value and the edge events, checks that python3
# runs in the chroot, and removes the chip. Exits non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ ${GPIOFS_VM:-} == 1 ]] || { echo "smoke.sh: run me inside the VM: bash tests/vm/run.sh -- bash $0" >&2; exit 2; }
# shellcheck source=tests/vm/gpio-sim.sh
source "$HERE/gpio-sim.sh"
# shellcheck source=tests/vm/check.sh
source "$HERE/check.sh"

finish() { checks_summary smoke; }
trap 'echo "FAIL - aborted at line $LINENO"; failed=$((failed + 1)); finish' ERR

echo "kernel $(uname -r), $(nproc) cpus"
check "kernel is the one set up ($GPIOFS_VM_KREL)" test "$(uname -r)" = "$GPIOFS_VM_KREL"
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3 # skip version-manager shims: slow under TCG
check "python3 runs in the chroot" $PY -c 'import sys; assert sys.version_info >= (3, 9)'
check "/dev/fuse exists" test -c /dev/fuse
# shellcheck disable=SC2016 # expanded by the inner bash
check "cwd is writable" bash -c 't=$(mktemp -p . .vm-write-test.XXXXXX) && rm -f "$t"'

chip=$(gpio_sim_create smoke 8 "" led button)
dev=$(gpio_sim_dev smoke)
base=$(gpio_sim_base smoke)
echo "sim smoke: $chip, $dev, sysfs base $base"
check "/dev/$chip is a char device" test -c "/dev/$chip"
check "/sys/class/gpio/gpiochip$base exists" test -d "/sys/class/gpio/gpiochip$base"
check "its ngpio is 8" test "$(cat "/sys/class/gpio/gpiochip$base/ngpio")" = 8
check "its label is smoke" test "$(cat "/sys/class/gpio/gpiochip$base/label")" = smoke

# GPIO_GET_CHIPINFO_IOCTL on the chardev: struct gpiochip_info { char name[32], label[32]; u32 lines; }
info=$($PY - "/dev/$chip" <<'EOF'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = fcntl.ioctl(fd, 0x8044B401, bytes(68))
name, label, lines = struct.unpack("32s32sI", buf)
print(name.rstrip(b"\0").decode(), label.rstrip(b"\0").decode(), lines)
EOF
)
check "chardev chip info is '$chip smoke 8' (got '$info')" test "$info" = "$chip smoke 8"

gpio=$((base + 2))
g=/sys/class/gpio/gpio$gpio
echo "$gpio" >/sys/class/gpio/export
check "exported gpio$gpio via /sys/class/gpio" test -d "$g"
echo in >"$g/direction"
echo both >"$g/edge"
check "edge is both" test "$(cat "$g/edge")" = both

gpio_sim_pull smoke 2 pull-down
check "pull-down reads 0" test "$(cat "$g/value")" = 0
gpio_sim_pull smoke 2 pull-up
check "pull-up reads 1" test "$(cat "$g/value")" = 1
check "sim sees the pull (value 1)" test "$(gpio_sim_value smoke 2)" = 1
gpio_sim_pull smoke 2 pull-down
check "pull-down again reads 0" test "$(cat "$g/value")" = 0

# Edge events through the simulated interrupt: poll() on the value file
# wakes with POLLPRI on each edge.
edges=$($PY - "$g/value" /sys/devices/platform/"$dev"/"$chip"/sim_gpio2/pull <<'EOF'
import os, select, sys
value, pull = sys.argv[1], sys.argv[2]
fd = os.open(value, os.O_RDONLY)
os.read(fd, 8)
p = select.poll()
p.register(fd, select.POLLPRI | select.POLLERR)
seen = []
for want in ("pull-up", "pull-down", "pull-up"):
    with open(pull, "w") as f:
        f.write(want)
    if not p.poll(5000):
        print("timeout waiting for edge to", want)
        sys.exit(1)
    os.lseek(fd, 0, 0)
    seen.append(os.read(fd, 8).decode().strip())
print(" ".join(seen))
EOF
) || true
check "edge events seen with values 1 0 1 (got '$edges')" test "$edges" = "1 0 1"

echo "$gpio" >/sys/class/gpio/unexport
check "unexported gpio$gpio" test ! -e "$g"

# output: what the kernel drives is visible to the sim
gpio=$((base + 1))
echo "$gpio" >/sys/class/gpio/export
echo high >"/sys/class/gpio/gpio$gpio/direction"
check "output driven high is seen by the sim" test "$(gpio_sim_value smoke 1)" = 1
echo 0 >"/sys/class/gpio/gpio$gpio/value"
check "output driven low is seen by the sim" test "$(gpio_sim_value smoke 1)" = 0
echo "$gpio" >/sys/class/gpio/unexport

gpio_sim_remove smoke
check "chip removed: /dev/$chip gone" test ! -e "/dev/$chip"
check "chip removed: gpiochip$base gone" test ! -e "/sys/class/gpio/gpiochip$base"
check "configfs entry removed" test ! -e /sys/kernel/config/gpio-sim/smoke

trap - ERR
finish
