#!/usr/bin/env bash
# tests/vm/arm/setup.sh ARCH: prepare an ARM guest for tests/vm/run.sh
# (GPIOFS_VM_ARCH=arm64|armhf). Idempotent; each step is cached.
#
#   arm64  Debian trixie-backports Linux 7.3 (linux-binary-unsigned-7.3.*-arm64
#          and linux-modules-*), gpio-sim and configfs as shipped
#   armhf  Debian bookworm Linux 6.12 armmp-lpae; irq_sim.ko and gpio-sim.ko
#          built out of tree with arm-linux-gnueabihf-gcc
# Both: an initramfs with Debian's static ARM busybox and tests/vm/guest-init.sh
# (the same /init as amd64), and an ARM userland (trixie: bash, python3,
# libgpiod tools, util-linux, ...; mmdebstrap --variant=extract, no emulation
# needed) that the guest uses as its read-only root instead of the host's /.
# Packages come through a private apt state in the cache: the host's apt
# configuration (architectures, sources) is not touched.
#
# Cache: ${GPIOFS_VM_CACHE:-$HOME/.cache/gpiofs-vm}/ARCH. Progress goes to
# stderr; stdout gets the shell assignments run.sh evals (those of
# tests/vm/setup.sh plus GPIOFS_VM_QEMU, GPIOFS_VM_CMDLINE, GPIOFS_VM_ROOT).
# GPIOFS_VM_REFRESH=1 looks for a newer kernel and rebuilds the userland.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARCH=${1:?usage: setup.sh arm64|armhf}
CACHE=${GPIOFS_VM_CACHE:-${HOME:?HOME is not set}/.cache/gpiofs-vm}/$ARCH
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "gpiofs-vm setup ($ARCH): $*" >&2; }
die() {
	echo "gpiofs-vm setup ($ARCH): ERROR: $*" >&2
	exit 1
}

# What the guest's userland needs: the suite's shell and Python, libgpiod's
# tools, mount/umount, timeout, awk, fusermount3.
USERLAND=bash,dash,coreutils,python3,gpiod,util-linux,mount,mawk,procps,fuse3,kmod,findutils,grep,sed
case $ARCH in
arm64)
	SUITES=(trixie trixie-backports)
	KFLAVOUR=arm64
	KPATTERN='^linux-binary-unsigned-7\.3\.[0-9]+\+deb13-arm64$'
	# pauth-impdef: QEMU's own pointer-authentication hash, far cheaper
	# under emulation than the architected one
	QEMU="qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on"
	HOSTPKGS=(qemu-system-arm)
	;;
armhf)
	SUITES=(bookworm bookworm-updates)
	KFLAVOUR=armmp-lpae
	KPATTERN='^linux-image-6\.12\.[0-9]+\+deb12-armmp-lpae$'
	QEMU="qemu-system-arm -M virt,highmem=off -cpu max"
	HOSTPKGS=(qemu-system-arm gcc-arm-linux-gnueabihf make qemu-user-static)
	;;
*) die "unknown architecture '$ARCH' (arm64 or armhf)" ;;
esac
# The virt machine's own PL061 GPIO chip stays unbound: the guest has only
# gpio-sim's chips, as on amd64 (the suite starts with none at all).
CMDLINE="console=ttyAMA0 initcall_blacklist=pl061_gpio_driver_init"
HOSTPKGS+=(mmdebstrap busybox-static cpio kmod xz-utils gzip)

# shellcheck source=contrib/cross/apt-need.sh
. "$HERE/../../../contrib/cross/apt-need.sh"
# shellcheck source=tests/vm/initramfs.sh
. "$HERE/../initramfs.sh"
apt_need "${HOSTPKGS[@]}" || die "cannot install ${HOSTPKGS[*]}"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"

# ------------------------------------------------------- private apt state
APTDIR=$CACHE/apt
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
	-o "Dir::State=$APTDIR/state" -o "Dir::State::status=$APTDIR/status"
	-o "Dir::Cache=$APTDIR/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
	-o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH"
)
# armhf modules are built with the host's (amd64) kbuild tools
[[ $ARCH == armhf ]] && APT_OPTS+=(-o APT::Architectures::=amd64)
papt() { apt-get -q "${APT_OPTS[@]}" "$@"; }
pcache() { apt-cache "${APT_OPTS[@]}" "$@"; }
if [[ ! -s $APTDIR/sources.list || -n ${GPIOFS_VM_REFRESH:-} ]]; then
	mkdir -p "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial"
	: >"$APTDIR/status"
	for s in "${SUITES[@]}"; do
		echo "deb [signed-by=$KEYRING] $MIRROR $s main"
	done >"$APTDIR/sources.list"
	[[ $ARCH == armhf ]] &&
		echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main" >>"$APTDIR/sources.list"
	log "apt-get update (${SUITES[*]}, $ARCH)"
	papt update >&2 || die "apt-get update of the $ARCH package lists failed"
fi

# ------------------------------------------------------------------ kernel
if [[ -s $CACHE/current && -z ${GPIOFS_VM_REFRESH:-} ]]; then
	KPKG=$(<"$CACHE/current")
else
	KPKG=$(pcache pkgnames linux- | grep -E "$KPATTERN" | sort -V | tail -n 1) ||
		die "no package matching $KPATTERN in ${SUITES[*]}"
	log "newest kernel: $KPKG"
fi
ABI=${KPKG#linux-binary-unsigned-}
ABI=${ABI#linux-image-}
ABI=${ABI%-"$KFLAVOUR"}
KREL=$ABI-$KFLAVOUR
KDIR=$CACHE/$ABI
ROOT=$KDIR/root
if [[ ! -e $KDIR/.done-unpack ]]; then
	pkgs=("$KPKG" busybox-static)
	[[ $ARCH == arm64 ]] && pkgs+=("linux-modules-$KREL")
	[[ $ARCH == armhf ]] && pkgs+=("linux-headers-$KREL" "linux-headers-$ABI-common"
		"linux-kbuild-$ABI:amd64" "linux-kbuild-$ABI:armhf" linux-source-6.12)
	log "downloading ${pkgs[*]}"
	rm -rf "$KDIR"
	mkdir -p "$KDIR/debs"
	(cd "$KDIR/debs" && papt download "${pkgs[@]}" >&2) || die "apt-get download ${pkgs[*]} failed"
	for f in "$KDIR"/debs/*.deb; do
		[[ $f == */linux-source-* || $f == */linux-kbuild-*_armhf.deb ]] && continue
		dpkg-deb -x "$f" "$ROOT" || die "dpkg-deb -x $f failed"
	done
	touch "$KDIR/.done-unpack"
fi
MODDIR=$ROOT/usr/lib/modules/$KREL
[[ -d $MODDIR ]] || MODDIR=$ROOT/lib/modules/$KREL
for k in "$MODDIR/vmlinuz.unsigned" "$ROOT/boot/vmlinuz-$KREL"; do
	[[ -f $k ]] && KERNEL=$k
done
[[ -n ${KERNEL:-} ]] || die "no kernel image in $KPKG"
BUSYBOX=$ROOT/usr/bin/busybox
[[ -x $BUSYBOX ]] || BUSYBOX=$ROOT/bin/busybox
[[ -x $BUSYBOX ]] || die "no busybox in busybox-static:$ARCH"

# armhf: gpio-sim is not in Debian's armmp kernels; build it as amd64 does
BUILD=$KDIR/build
if [[ $ARCH == armhf && ! -e $KDIR/.done-modules ]]; then
	HDRS=$ROOT/usr/src/linux-headers-$KREL
	sed -i "s#^include /usr/src/#include $ROOT/usr/src/#" "$HDRS/Makefile"
	# The amd64 kbuild's 32-bit modpost knows x86's struct sizes, not ARM's:
	# run the armhf one under qemu-user instead.
	MOD=$ROOT/usr/lib/linux-kbuild-$ABI/scripts/mod
	dpkg-deb --fsys-tarfile "$KDIR"/debs/linux-kbuild-*_armhf.deb |
		tar -xO "./usr/lib/linux-kbuild-$ABI/scripts/mod/modpost.real-lsb-32" >"$MOD/modpost.armhf" ||
		die "no modpost.real-lsb-32 in linux-kbuild-$ABI:armhf"
	chmod 755 "$MOD/modpost.armhf"
	printf '#!/bin/sh\nexec qemu-arm-static -L /usr/arm-linux-gnueabihf %q "$@"\n' "$MOD/modpost.armhf" >"$MOD/modpost.real-lsb-32"
	log "building irq_sim.ko and gpio-sim.ko (arm-linux-gnueabihf-gcc)"
	rm -rf "$BUILD"
	mkdir -p "$BUILD"
	dpkg-deb --fsys-tarfile "$KDIR"/debs/linux-source-6.12_*.deb |
		tar -xO ./usr/src/linux-source-6.12.tar.xz |
		tar -xJ -C "$BUILD" --strip-components=3 linux-source-6.12/drivers/gpio/gpio-sim.c \
			linux-source-6.12/kernel/irq/irq_sim.c || die "extracting gpio-sim.c and irq_sim.c failed"
	# as in tests/vm/setup.sh: irq_to_desc() is not exported to modules
	sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$BUILD/irq_sim.c"
	printf '\nMODULE_LICENSE("GPL");\n' >>"$BUILD/irq_sim.c"
	echo 'obj-m := irq_sim.o gpio-sim.o' >"$BUILD/Kbuild"
	make -s -C "$HDRS" M="$BUILD" ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf- \
		CONFIG_DEBUG_INFO_BTF_MODULES= -j"$(nproc)" modules >"$BUILD/build.log" 2>&1 || {
		cat "$BUILD/build.log" >&2
		die "building the modules failed"
	}
	touch "$KDIR/.done-modules"
fi

# --------------------------------------------------------------- initramfs
WANT=(configfs 9pnet_virtio 9p virtio_rng gpio_sim)
declare -A MODFILE=() LOADED=()
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	MODFILE[${n//-/_}]=$f
done < <(find "$MODDIR/kernel" "$BUILD" -name '*.ko' -o -name '*.ko.xz' 2>/dev/null)
ORDER=()
add_mod() {
	local n=${1//-/_} d
	[[ -n ${LOADED[$n]:-} ]] && return 0
	[[ -n ${MODFILE[$n]:-} ]] || die "module $n not found in $KREL"
	for d in $(modinfo -F depends "${MODFILE[$n]}" | tr ',' ' '); do add_mod "$d"; done
	LOADED[$n]=1
	ORDER+=("$n")
}
for m in "${WANT[@]}"; do add_mod "$m"; done

INITRD=$KDIR/initramfs.cpio.gz
stamp=$({
	sha256sum "$HERE/../guest-init.sh" "$BUSYBOX"
	for n in "${ORDER[@]}"; do sha256sum "${MODFILE[$n]}"; done
} | sed 's/ .*//' | sha256sum | cut -d' ' -f1)
if [[ ! -s $INITRD || $(cat "$INITRD.stamp" 2>/dev/null) != "$stamp" ]]; then
	log "building initramfs (modules: ${ORDER[*]})"
	tmp=$(mktemp -d "$KDIR/.initramfs.XXXXXX")
	mkdir -p "$tmp"/{bin,dev,proc,sys,tmp,newroot,results,lib/modules}
	install -m 755 "$BUSYBOX" "$tmp/bin/busybox"
	install -m 755 "$HERE/../guest-init.sh" "$tmp/init"
	for n in "${ORDER[@]}"; do
		case ${MODFILE[$n]} in
		*.xz) xz -dc "${MODFILE[$n]}" ;;
		*) cat "${MODFILE[$n]}" ;;
		esac >"$tmp/lib/modules/$n.ko" || die "cannot decompress ${MODFILE[$n]}"
		echo "$n" >>"$tmp/lib/modules/load-order"
	done
	pack_initramfs "$tmp" "$INITRD" "$stamp"
fi

# ---------------------------------------------------------------- userland
USERROOT=$CACHE/userland
if [[ $(cat "$USERROOT.stamp" 2>/dev/null) != "$USERLAND" || -n ${GPIOFS_VM_REFRESH:-} ]]; then
	log "building the $ARCH userland with mmdebstrap (${USERLAND//,/ })"
	rm -rf "$USERROOT" "$USERROOT.stamp"
	mmdebstrap --quiet --variant=extract --architectures="$ARCH" --include="$USERLAND" \
		trixie "$USERROOT" "deb [signed-by=$KEYRING] $MIRROR trixie main" >&2 ||
		die "mmdebstrap of the $ARCH userland failed"
	# what the maintainer scripts the extract variant skips would have made
	ln -s mawk "$USERROOT/usr/bin/awk"
	echo 'root:x:0:0:root:/root:/bin/bash' >"$USERROOT/etc/passwd"
	echo 'root:x:0:' >"$USERROOT/etc/group"
	for f in python3 gpioinfo awk sh timeout umount; do
		[[ -x $USERROOT/usr/bin/$f ]] || die "the userland has no /usr/bin/$f"
	done
	echo "$USERLAND" >"$USERROOT.stamp"
fi

echo "$KPKG" >"$CACHE/current.tmp" && mv -f "$CACHE/current.tmp" "$CACHE/current"
printf 'GPIOFS_VM_VERSION=%q\nGPIOFS_VM_KREL=%q\nGPIOFS_VM_KERNEL=%q\nGPIOFS_VM_INITRD=%q\n' \
	"$KPKG" "$KREL" "$KERNEL" "$INITRD"
printf 'GPIOFS_VM_QEMU=%q\nGPIOFS_VM_CMDLINE=%q\nGPIOFS_VM_ROOT=%q\n' "$QEMU" "$CMDLINE" "$USERROOT"
