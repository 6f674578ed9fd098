#!/bin/bash
# The systemd VM test, run inside the VM by gpiofs-vmtest.service once
# systemd has booted (tests/vm/systemd/run.sh sets it up): installs the
# package in /vmtest, runs the service with no GPIO chip, creates a gpio-sim
# chip afterwards, uses it through /sys/class/gpio as an unprivileged member
# of group gpio, stops the service, tries the /sys/class overlay helper, and
# purges the package. Prints ok/FAIL lines and a summary.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck source=../gpio-sim.sh
source /vmtest/gpio-sim.sh

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND...: ok when COMMAND succeeds
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else fail "$what: $(echo "$out" | tail -n 5)"; fi
}
note() { echo "# $*"; }
section() { echo "# [$SECONDS s] $*"; }
wait_for() { # SECONDS COMMAND...: polls COMMAND every 0.1 s
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
# The chip's base in the kernel's numbering (gpiofs keeps it), read below
# the platform device because /sys/class/gpio is gpiofs's while it runs.
sim_base() {
	local dev
	dev=$(gpio_sim_dev "$1") || return 1
	cat /sys/devices/platform/"$dev"/{gpio,gpiochip*/gpio}/gpiochip*/base 2>/dev/null | head -n 1
}
# gpiofs mounts show source "gpiofs" (and type fuse or fuse.gpiofs).
mounted_gpiofs() { grep -q "^gpiofs /sys/class/gpio fuse" /proc/self/mounts; }
chip_served() { mounted_gpiofs && test -d "/sys/class/gpio/gpiochip$base"; }
in_host_namespace() {
	awk '$5 == "/sys/class/gpio" && / - fuse(\.gpiofs)? gpiofs /' /proc/1/mountinfo | grep -q .
}
# Milliseconds from the start of the unit's activation (ExecStartPre
# included) and from gpiofs's own exec, to READY=1 (the unit turned active).
ready_times() {
	local inactive_exit main_start active_enter
	inactive_exit=$(systemctl show gpiofs -p InactiveExitTimestampMonotonic --value)
	main_start=$(systemctl show gpiofs -p ExecMainStartTimestampMonotonic --value)
	active_enter=$(systemctl show gpiofs -p ActiveEnterTimestampMonotonic --value)
	echo "$(((active_enter - inactive_exit) / 1000)) ms from systemctl start" \
		"($(((active_enter - main_start) / 1000)) ms from gpiofs's exec) to READY=1"
}

state=$(systemctl is-system-running --wait)
note "systemd $(systemctl --version | head -n 1 | cut -d' ' -f2) as PID 1, kernel $(uname -r), system $state"
note "$(systemd-analyze time | head -n 1)"

# ---------------------------------------------------------------- install
section install
deb=$(echo /vmtest/gpiofs_*.deb)
if out=$(dpkg -i "$deb" 2>&1); then
	ok "dpkg -i $(basename "$deb")"
else
	fail "dpkg -i $deb: $(echo "$out" | tail -n 5)"
	note "the other checks need the package"
	echo "systemd: $passed passed, $failed failed"
	exit 1
fi
check "gpiofs is installed but not enabled" \
	bash -c '[[ $(systemctl is-enabled gpiofs) == disabled && $(systemctl is-enabled gpiofs-run) == disabled ]]'
check "and not started" bash -c '! systemctl is-active -q gpiofs && ! systemctl is-active -q gpiofs-run'
check "postinst created group gpio" getent group gpio
check "man page and completions installed" test -f /usr/share/man/man1/gpiofs.1.gz \
	-a -f /usr/share/bash-completion/completions/gpiofs \
	-a -f /usr/share/zsh/vendor-completions/_gpiofs \
	-a -f /usr/share/fish/vendor_completions.d/gpiofs.fish
# --man=no: the minimal root has no man(1); the page is checked above.
check "systemd-analyze verify gpiofs.service gpiofs-run.service" \
	bash -c 'out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/gpiofs.service \
		/usr/lib/systemd/system/gpiofs-run.service 2>&1); echo "$out"; [[ -z $out ]]'
note "$(systemd-analyze security gpiofs.service 2>/dev/null | tail -n 1)"

# ------------------------------------------- start with no chip, then add one
section "start with no chip, then add one"
check "no GPIO chip before the service starts" bash -c '! ls /dev/gpiochip* 2>/dev/null'
if systemctl enable --now gpiofs >/dev/null 2>&1 && systemctl is-active -q gpiofs; then
	ok "systemctl enable --now gpiofs with no GPIO chip: active"
	note "first start: $(ready_times)"
else
	fail "systemctl enable --now gpiofs with no GPIO chip: $(systemctl is-active gpiofs); $(journalctl -u gpiofs -n 3 -o cat | tr '\n' ' ')"
fi
chip=$(gpio_sim_create late 8 led button) || fail "gpio-sim chip"
base=$(sim_base late)
note "gpio-sim chip 'late' created after the start: $chip, base $base"
if wait_for 30 chip_served; then
	ok "the chip created afterwards appears in /sys/class/gpio (gpiofs, restarts: $(systemctl show gpiofs -p NRestarts --value))"
else
	fail "no /sys/class/gpio/gpiochip$base from gpiofs; $(systemctl is-active gpiofs); $(journalctl -u gpiofs -n 5 -o cat | tr '\n' ' ')"
fi
check "the tree is mounted in the host's mount namespace (PID 1 sees it)" in_host_namespace
check "gpiochip label is the chip's" grep -qx late "/sys/class/gpio/gpiochip$base/label"

# --------------------------------------- an unprivileged member of group gpio
section "an unprivileged member of group gpio"
useradd -m -G gpio alice && useradd -m bob
line=$((base + 0))
check "alice (group gpio) exports $line, drives it high and reads it back" \
	runuser -u alice -- bash -c "echo $line > /sys/class/gpio/export &&
		echo out > /sys/class/gpio/gpio$line/direction &&
		echo 1 > /sys/class/gpio/gpio$line/value &&
		[[ \$(cat /sys/class/gpio/gpio$line/value) == 1 ]]"
check "the simulator sees the line driven high" test "$(gpio_sim_value late 0)" = 1
check "bob (not in group gpio) may not export" \
	bash -c "! runuser -u bob -- bash -c 'echo $((base + 1)) > /sys/class/gpio/export' 2>/dev/null"
check "gpioinfo shows the line held by gpiofs" \
	bash -c "gpioinfo $chip | grep -E '^\s+line\s+0:' | grep -q '\"gpiofs\"'"

# ------------------------------------------------------- restart, READY=1
section "restart, READY=1"
if systemctl restart gpiofs && systemctl is-active -q gpiofs; then
	ok "systemctl restart gpiofs (a chip present): active"
	note "restart: $(ready_times)"
else
	fail "systemctl restart gpiofs: $(systemctl is-active gpiofs)"
fi

# ------------------------------------------------------------------- stop
section stop
check "systemctl stop gpiofs" systemctl stop gpiofs
check "the tree is unmounted" bash -c '! grep "^gpiofs " /proc/self/mounts'
check "the kernel's own /sys/class/gpio shows again" \
	bash -c '[[ $(stat -f -c %T /sys/class/gpio) == sysfs ]]'
check "gpioinfo: every line of the chip is free again" \
	bash -c "! gpioinfo $chip | grep -q '\\[used\\]'"
check "no overlay or /run/gpiofs left" \
	bash -c '! grep -q gpiofs-class /proc/self/mounts && [[ ! -e /run/gpiofs ]]'

# ---------------- /sys/class/gpio on a kernel without CONFIG_GPIO_SYSFS
section "/sys/class/gpio on a kernel without CONFIG_GPIO_SYSFS"
# This kernel has its own /sys/class/gpio; in a private mount namespace a
# tmpfs on /sys/class that lists every class but gpio stands for a kernel
# without it. There the helper must add gpio, keep the other classes, and
# take everything away again.
cat >/tmp/no-gpio-sysfs.sh <<'EOS'
set -eu
mkdir -p /tmp/real-class
mount --bind /sys/class /tmp/real-class
mount -t tmpfs -o mode=0755 no-gpio-sysfs /sys/class
for c in /tmp/real-class/*; do [ "${c##*/}" = gpio ] || ln -s "$c" "/sys/class/${c##*/}"; done
[ ! -e /sys/class/gpio ]
/usr/libexec/gpiofs/gpiofs-sysfs-class setup
[ -d /sys/class/gpio ] && [ -e /sys/class/net/lo ] && [ -e /sys/class/tty/ttyS0 ]
grep -q '^gpiofs-class /sys/class overlay ro' /proc/self/mounts
if touch /sys/class/gpio/x 2>/dev/null; then echo "overlay is writable"; exit 1; fi
gpiofs --sim demo:8 /sys/class/gpio 2>/tmp/gpiofs.log &
pid=$!
for _ in $(seq 300); do grep -q '^gpiofs /sys/class/gpio ' /proc/self/mounts && break; sleep 0.1; done
echo 512 > /sys/class/gpio/export
[ "$(cat /sys/class/gpio/gpio512/direction)" = in ]
kill "$pid"; wait "$pid"
/usr/libexec/gpiofs/gpiofs-sysfs-class undo
[ ! -e /sys/class/gpio ] && [ -e /sys/class/net/lo ] && [ ! -e /run/gpiofs ]
! grep -q gpiofs-class /proc/self/mounts
EOS
check "without kernel sysfs GPIO: gpiofs-sysfs-class adds /sys/class/gpio (read-only overlay), gpiofs serves it, undo removes it" \
	unshare --mount --propagation private sh -x /tmp/no-gpio-sysfs.sh

# ------------------------------------------------------------------ purge
section purge
files=$(dpkg -L gpiofs | while read -r f; do [[ -d $f ]] || echo "$f"; done)
check "dpkg --purge gpiofs" dpkg --purge gpiofs
left=$(for f in $files; do [[ -e $f || -L $f ]] && echo "$f"; done)
[[ -z $left ]] && ok "purge left none of the package's files" || fail "purge left: $left"
check "purge removed /etc/default/gpiofs and the enablement" bash -c \
	'[[ ! -e /etc/default/gpiofs && ! -e /etc/systemd/system/multi-user.target.wants/gpiofs.service ]] &&
	 ! ls /var/lib/systemd/deb-systemd-helper-enabled/ 2>/dev/null | grep -q gpiofs &&
	 ! ls /var/lib/systemd/deb-systemd-helper-masked/ 2>/dev/null | grep -q gpiofs'
check "systemd no longer knows gpiofs.service" \
	bash -c '[[ $(systemctl show gpiofs -p LoadState --value) == not-found ]]'
check "no gpiofs mount or process left" \
	bash -c '! grep -q gpiofs /proc/self/mounts && ! grep -qx gpiofs /proc/[0-9]*/comm'
note "group gpio stays after purge (Debian does not remove system groups)"

gpio_sim_remove_all >/dev/null 2>&1
echo "systemd: $passed passed, $failed failed"
