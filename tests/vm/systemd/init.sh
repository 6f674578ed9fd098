#!/bin/busybox sh
# shellcheck shell=dash
# /init of the systemd test VM's initramfs (tests/vm/systemd/run.sh builds
# it): loads the modules listed in /lib/modules/load-order, mounts the
# Debian root shared over 9p (tag "rootfs", read-write) and hands over to
# systemd as PID 1.
/bin/busybox mkdir -p /bin /dev /proc /sys /newroot
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
fail() {
	echo "gpiofs-systemd-vm init: ERROR: $*"
	poweroff -f
}
while read -r mod; do
	insmod "/lib/modules/$mod.ko" || fail "insmod $mod"
done </lib/modules/load-order
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,rw rootfs /newroot ||
	fail "cannot mount the root (9p)"
umount /proc /sys
mount --move /dev /newroot/dev || umount /dev
exec switch_root /newroot /sbin/init
