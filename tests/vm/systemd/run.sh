#!/usr/bin/env bash
# tests/vm/systemd/run.sh DEB: boots Debian bookworm with systemd as PID 1
# in QEMU (the tests' 6.12 kernel with gpio-sim, from tests/vm/setup.sh),
# installs the gpiofs package DEB there and checks the service (test.sh):
# ok/FAIL lines, then "systemd: N passed, M failed". Exit status: 0 when all
# passed, 1 when a check failed, 125 when the VM could not run.
#
# Cache: ${GPIOFS_VM_CACHE:-~/.cache/gpiofs-vm}/systemd: rootfs-<stamp>/
# (mmdebstrap --variant=minbase, unpacked; rebuilt when the package list
# changes) and initramfs-<kernel>.cpio.gz (busybox, the 9p modules and
# init.sh). Every run works on a copy of the root, shared over 9p
# read-write, so the cached one stays pristine. Needs root (mmdebstrap,
# qemu's 9p passthrough).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
	echo "gpiofs-systemd-vm: ERROR: $*" >&2
	exit 125
}
[[ $# == 1 && -f $1 ]] || die "usage: tests/vm/systemd/run.sh GPIOFS_DEB"
DEB=$(realpath "$1")
TIMEOUT=${GPIOFS_VM_TIMEOUT:-600}
CACHE=${GPIOFS_VM_CACHE:-$HOME/.cache/gpiofs-vm}/systemd
PACKAGES=systemd,systemd-sysv,udev,kmod,fuse3,python3,gpiod
mkdir -p "$CACHE"

# The kernel and its modules: tests/vm/setup.sh's cache.
eval "$(bash "$HERE/../setup.sh")" || die "tests/vm/setup.sh failed"
KDIR=$(dirname "$GPIOFS_VM_KERNEL")
MODULES=$KDIR/root/lib/modules/$GPIOFS_VM_KREL
[[ -d $MODULES/kernel && -f $KDIR/build/gpio-sim.ko ]] ||
	die "no modules for $GPIOFS_VM_KREL in $KDIR (tests/vm/setup.sh's layout changed?)"

command -v mmdebstrap >/dev/null || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
}

# ------------------------------------------------------------ root file system
stamp=$(echo "bookworm minbase $PACKAGES" | sha256sum | cut -c1-12)
ROOTFS=$CACHE/rootfs-$stamp
if [[ ! -f $ROOTFS.done ]]; then
	echo "gpiofs-systemd-vm: mmdebstrap bookworm ($PACKAGES)" >&2
	rm -rf "$ROOTFS" "$ROOTFS.tar"
	start=$SECONDS
	mmdebstrap --quiet --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS.tar" ||
		die "mmdebstrap failed"
	mkdir "$ROOTFS"
	tar -C "$ROOTFS" -xpf "$ROOTFS.tar"
	rm -f "$ROOTFS.tar"
	echo "gpiofs-systemd-vm: root file system built in $((SECONDS - start)) s" >&2
	touch "$ROOTFS.done"
fi

# ---------------------------------------------------------------- initramfs
INITRD=$CACHE/initramfs-$GPIOFS_VM_KREL.cpio.gz
istamp=$(sha256sum "$HERE/init.sh" /bin/busybox | cut -c1-64 | sha256sum | cut -c1-64)
if [[ ! -f $INITRD || $(cat "$INITRD.stamp" 2>/dev/null) != "$istamp" ]]; then
	tmp=$(mktemp -d "$CACHE/.initramfs.XXXXXX")
	mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,lib/modules}
	cp /bin/busybox "$tmp/bin/"
	cp "$HERE/init.sh" "$tmp/init"
	chmod 755 "$tmp/init"
	# 9p root, in dependency order
	for m in fs/netfs/netfs net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p; do
		xz -dc "$MODULES/kernel/$m.ko.xz" >"$tmp/lib/modules/${m##*/}.ko"
		echo "${m##*/}" >>"$tmp/lib/modules/load-order"
	done
	(cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$INITRD"
	rm -rf "$tmp"
	echo "$istamp" >"$INITRD.stamp"
fi

# -------------------------------------------------------------- this run
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QPID=
TPID=
cleanup() {
	[[ -n $QPID ]] && kill "$QPID" 2>/dev/null
	[[ -n $TPID ]] && kill "$TPID" 2>/dev/null
	rm -rf "$RUN"
}
trap cleanup EXIT
ROOT=$RUN/root
cp -a "$ROOTFS" "$ROOT"
# The modules systemd loads on demand: fuse, overlay, configfs, gpio-sim.
KROOT=$ROOT/lib/modules/$GPIOFS_VM_KREL
mkdir -p "$KROOT/kernel/fs" "$KROOT/extra"
for d in fs/fuse fs/overlayfs fs/configfs; do cp -a "$MODULES/kernel/$d" "$KROOT/kernel/fs/"; done
cp "$KDIR/build/gpio-sim.ko" "$KDIR/build/irq_sim.ko" "$KROOT/extra/"
cp "$MODULES"/modules.{builtin,builtin.modinfo,order} "$KROOT/"
depmod -b "$ROOT" "$GPIOFS_VM_KREL"
echo gpio-sim >"$ROOT/etc/modules-load.d/gpio-sim.conf"
echo gpiofs-vm >"$ROOT/etc/hostname"
mkdir "$ROOT/vmtest"
cp "$DEB" "$HERE/test.sh" "$HERE/../gpio-sim.sh" "$ROOT/vmtest/"
touch "$ROOT/vmtest/output"
cp "$HERE/gpiofs-vmtest.service" "$ROOT/etc/systemd/system/"
ln -s /etc/systemd/system/gpiofs-vmtest.service "$ROOT/etc/systemd/system/multi-user.target.wants/"

echo "gpiofs-systemd-vm: booting (kernel $GPIOFS_VM_KREL, TCG)" >&2
boot=$SECONDS
# shellcheck disable=SC2054 # the commas are qemu option syntax
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
	-nographic -monitor none -no-reboot -nic none \
	-serial "file:$RUN/console.log" \
	-kernel "$GPIOFS_VM_KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 systemd.show_status=0" \
	-device virtio-rng-pci \
	-virtfs "local,path=$ROOT,mount_tag=rootfs,security_model=passthrough,multidevs=remap" \
	</dev/null >"$RUN/qemu.log" 2>&1 &
QPID=$!
tail -n +1 -s 0.2 -f --pid="$QPID" "$ROOT/vmtest/output" &
TPID=$!
qrc=0
wait "$QPID" || qrc=$?
QPID=
wait "$TPID" || true
TPID=
echo "gpiofs-systemd-vm: VM ran $((SECONDS - boot)) s (boot, test, power off)" >&2

summary=$(grep -E '^systemd: [0-9]+ passed, [0-9]+ failed$' "$ROOT/vmtest/output" | tail -n 1)
if [[ -z $summary ]]; then
	echo "gpiofs-systemd-vm: ---- guest console (last 60 lines) ----" >&2
	tail -n 60 "$RUN/console.log" | sed -E $'s/\x1b(\\[[0-9;?]*[a-zA-Z]|c)//g; s/\r//g' >&2
	cat "$RUN/qemu.log" >&2
	((qrc == 124 || qrc == 137)) && die "timed out after ${TIMEOUT}s"
	die "the test did not finish (qemu exit code $qrc)"
fi
[[ $summary == *" 0 failed" ]]
