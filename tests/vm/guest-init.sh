#!/bin/busybox sh
# shellcheck shell=dash
# PID 1 of the gpiofs test VM. setup.sh copies this file into the initramfs as
# /init (next to a static busybox and the modules listed in
# /lib/modules/load-order); editing it makes setup.sh rebuild the initramfs.
#
# Protocol with run.sh (all through the 9p share tagged "gpiofs_results",
# a fresh host directory per run):
#   job.sh     bash script run inside the chroot (env, cd, exec CMD)
#   mounts     "TAG PATH" lines: writable 9p shares to mount at PATH in the chroot
#   status     written here: the exit status of job.sh
#   init-error written here if the VM could not be set up
# The job's stdout/stderr go to the virtio serial ports named gpiofs.stdout and
# gpiofs.stderr, which run.sh streams to its own stdout/stderr. The kernel
# console (ttyS0) goes to a log file that run.sh shows only on failure.

/bin/busybox mkdir -p /bin /dev /proc /sys /tmp /newroot /results
/bin/busybox --install -s /bin
export PATH=/bin
umask 022

mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

RESULTS_MOUNTED=
halt_vm() {
	# Bounded: a wedged FUSE mount left behind by the job must not hang us.
	timeout 10 sync
	poweroff -f
	sleep 5
	echo "gpiofs-vm init: poweroff failed"
	exit 1 # PID 1 exiting panics the kernel; panic=-1 + -no-reboot ends qemu
}
fail() {
	echo "gpiofs-vm init: ERROR: $*"
	if [ -n "$RESULTS_MOUNTED" ]; then
		echo "$*" >/results/init-error
	fi
	halt_vm
}

while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/$mod.ko" || fail "insmod $mod failed"
done </lib/modules/load-order

NINEP=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$NINEP" gpiofs_results /results ||
	fail "cannot mount the results share"
RESULTS_MOUNTED=1
[ -f /results/job.sh ] || fail "no job.sh in the results share"

mount -t configfs configfs /sys/kernel/config || fail "cannot mount configfs"

# The host's root, read-only, becomes the job's root.
R=/newroot
mount -t 9p -o "ro,$NINEP,cache=loose" hostroot $R || fail "cannot mount the host root (9p)"
mount -t proc proc $R/proc || fail "mount $R/proc"
mount -t sysfs sysfs $R/sys || fail "mount $R/sys"
mount -t configfs configfs $R/sys/kernel/config || fail "mount $R/sys/kernel/config"
# As systemd does: gpiofs watches held readers' signals through tracepoints.
mount -t tracefs nodev $R/sys/kernel/tracing || fail "mount $R/sys/kernel/tracing"
mount -t devtmpfs devtmpfs $R/dev || fail "mount $R/dev"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts || fail "mount $R/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm || fail "mount $R/dev/shm"
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "mount $R/tmp"
mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "mount $R/run"
if [ -d $R/var/tmp ]; then
	mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp || fail "mount $R/var/tmp"
fi
mkdir -p $R/run/gpiofs-vm
mount -o bind /results $R/run/gpiofs-vm || fail "bind the results share"
if [ -f /results/mounts ]; then
	while read -r tag path; do
		[ -n "$tag" ] || continue
		# under a tmpfs (e.g. /tmp/x) the mount point has to be made
		mkdir -p "$R$path" || fail "cannot create mount point $path"
		mount -t 9p -o "$NINEP,cache=mmap" "$tag" "$R$path" ||
			fail "cannot mount writable share $tag at $path"
	done </results/mounts
fi

hostname gpiofs-vm
ip link set lo up || fail "cannot bring up lo"

port() { # NAME -> /dev/vportXpY
	for p in /sys/class/virtio-ports/*; do
		if [ "$(cat "$p/name" 2>/dev/null)" = "$1" ]; then
			echo "/dev/${p##*/}"
			return 0
		fi
	done
	return 1
}
OUT=$(port gpiofs.stdout) || fail "no virtio port gpiofs.stdout"
ERR=$(port gpiofs.stderr) || fail "no virtio port gpiofs.stderr"

chroot $R /bin/bash /run/gpiofs-vm/job.sh <$R/dev/null >"$OUT" 2>"$ERR"
rc=$?
if ! { echo "$rc" >/results/status.tmp && mv /results/status.tmp /results/status; }; then
	fail "cannot write the exit status"
fi
halt_vm
