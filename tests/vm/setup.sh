#!/usr/bin/env bash
# tests/vm/setup.sh: prepare everything tests/vm/run.sh needs. Idempotent:
# each step is skipped when its result is already in the cache.
#
#  1. host tools (qemu-system-x86, busybox-static, gcc/make, cpio, kmod, ...)
#     installed with apt-get when missing;
#  2. the newest Debian bookworm 6.12 kernel for which the unsigned image,
#     the amd64 and common headers, kbuild and linux-source-6.12 all exist:
#     downloaded with `apt-get download`, unpacked with `dpkg-deb -x`;
#  3. irq_sim.ko and gpio-sim.ko built out of tree against those headers;
#  4. a busybox initramfs (init = tests/vm/guest-init.sh) with the modules.
#
# Cache: ${GPIOFS_VM_CACHE:-$HOME/.cache/gpiofs-vm} (outside the repo, shared
# by every clone). Its file `current` names the kernel version in use.
# Progress goes to stderr; stdout gets shell assignments for run.sh:
#   GPIOFS_VM_VERSION GPIOFS_VM_KREL GPIOFS_VM_KERNEL GPIOFS_VM_INITRD
#
# Environment:
#   GPIOFS_VM_CACHE           cache directory (see above)
#   GPIOFS_VM_KERNEL_VERSION  use this Debian version of linux-source-6.12
#                             (e.g. 6.12.117-1~deb12u1) instead of the cached
#                             one / the newest one
#   GPIOFS_VM_REFRESH=1       look for a newer kernel even if one is cached
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GPIOFS_VM_CACHE:-${HOME:?HOME is not set}/.cache/gpiofs-vm}

log() { echo "gpiofs-vm setup: $*" >&2; }
die() {
	echo "gpiofs-vm setup: ERROR: $*" >&2
	exit 1
}

# ---------------------------------------------------------------- host tools
# package -> a file it provides that we use
declare -A TOOLS=(
	[qemu-system-x86]=/usr/bin/qemu-system-x86_64
	[busybox-static]=/bin/busybox
	[gcc]=/usr/bin/gcc
	[make]=/usr/bin/make
	[libc6-dev]=/usr/include/stdio.h
	[cpio]=/bin/cpio
	[kmod]=/bin/kmod
	[xz-utils]=/usr/bin/xz
	[gzip]=/bin/gzip
	[coreutils]=/usr/bin/timeout
	[util-linux]=/usr/bin/flock
)
missing=()
for pkg in "${!TOOLS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}: run this script as root or install them"
	log "installing ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
fi
for pkg in "${!TOOLS[@]}"; do
	[[ -e ${TOOLS[$pkg]} ]] || die "package $pkg is installed but ${TOOLS[$pkg]} is missing"
done
# busybox-static: make sure it really is static (it runs inside the initramfs)
if ldd /bin/busybox >/dev/null 2>&1; then
	die "/bin/busybox is dynamically linked: install busybox-static, not busybox"
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"

# ------------------------------------------------------- which kernel to use
KPKGS() { # VERSION -> the five package names
	local abi=${1%%-*}+deb12
	echo "linux-image-$abi-amd64-unsigned linux-headers-$abi-amd64" \
		"linux-headers-$abi-common linux-kbuild-$abi linux-source-6.12"
}
apt_versions() { # PACKAGE -> its versions known to apt, one a line
	apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}'
}
find_newest() {
	local v best='' p ok
	for v in $(apt_versions linux-source-6.12 | sort -u); do
		[[ $v == 6.12.* ]] || continue
		ok=1
		for p in $(KPKGS "$v"); do
			apt_versions "$p" | grep -qxF -- "$v" || { ok=; break; }
		done
		[[ -n $ok ]] || continue
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
	done
	[[ -n $best ]] && echo "$best"
}

if [[ -n ${GPIOFS_VM_KERNEL_VERSION:-} ]]; then
	VERSION=$GPIOFS_VM_KERNEL_VERSION
elif [[ -z ${GPIOFS_VM_REFRESH:-} && -s $CACHE/current ]]; then
	VERSION=$(<"$CACHE/current")
else
	VERSION=$(find_newest) || {
		log "no complete 6.12 kernel in the apt lists: running apt-get update"
		apt-get update -qq || die "apt-get update failed"
		VERSION=$(find_newest) ||
			die "no bookworm linux-source-6.12 version has all of: $(KPKGS 6.12.X-1)"
	}
	log "newest complete Debian 6.12 kernel: $VERSION"
fi
[[ $VERSION =~ ^6\.12\.[0-9]+-[^/[:space:]]+$ ]] || die "bad kernel version '$VERSION'"
ABI=${VERSION%%-*}+deb12
KREL=$ABI-amd64 # uname -r of the guest
KDIR=$CACHE/$ABI
mkdir -p "$CACHE/debs" "$KDIR"

# ------------------------------------------------------------------ download
deb_of() { # PACKAGE -> cached .deb of $VERSION, if any
	local f
	for f in "$CACHE/debs/$1"_*.deb; do
		[[ -f $f ]] || continue
		if [[ $(dpkg-deb -f "$f" Package 2>/dev/null) == "$1" &&
			$(dpkg-deb -f "$f" Version 2>/dev/null) == "$VERSION" ]]; then
			echo "$f"
			return 0
		fi
	done
	return 1
}
need_download() {
	local p
	for p in $(KPKGS "$VERSION"); do deb_of "$p" >/dev/null || echo "$p"; done
}
step_done() { [[ -e $KDIR/.done-$1 ]]; }
mark_done() { touch "$KDIR/.done-$1"; }

if ! step_done unpack || ! step_done source; then
	todo=$(need_download)
	if [[ -n $todo ]]; then
		specs=()
		for p in $todo; do specs+=("$p=$VERSION"); done
		if ! apt-cache show "${specs[0]}" >/dev/null 2>&1; then
			apt-get update -qq || die "apt-get update failed"
		fi
		log "downloading ${specs[*]} (about 280 MB)"
		tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
		(cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "${specs[@]}" >&2) || {
			rm -rf "$tmp"
			die "apt-get download ${specs[*]} failed"
		}
		mv "$tmp"/*.deb "$CACHE/debs/"
		rmdir "$tmp"
		todo=$(need_download)
		[[ -z $todo ]] || die "download did not produce: $todo"
	fi
fi

# -------------------------------------------------------------------- unpack
ROOT=$KDIR/root
HDRS=$ROOT/usr/src/linux-headers-$KREL
if ! step_done unpack; then
	log "unpacking kernel image, headers and kbuild $VERSION"
	rm -rf "$ROOT"
	for p in $(KPKGS "$VERSION"); do
		[[ $p == linux-source-* ]] && continue
		dpkg-deb -x "$(deb_of "$p")" "$ROOT" || die "dpkg-deb -x $p failed"
	done
	[[ -f $ROOT/boot/vmlinuz-$KREL ]] || die "no boot/vmlinuz-$KREL in linux-image"
	[[ -f $HDRS/Makefile ]] || die "no $HDRS/Makefile in linux-headers"
	# The amd64 headers include the -common Makefile by its absolute
	# /usr/src path: point that at our unpacked copy.
	sed -i "s#^include /usr/src/#include $ROOT/usr/src/#" "$HDRS/Makefile"
	grep -q "^include $ROOT/usr/src/" "$HDRS/Makefile" ||
		die "could not repoint the include in $HDRS/Makefile"
	mark_done unpack
fi

SRC=$KDIR/src
SRC_FILES=(drivers/gpio/gpio-sim.c kernel/irq/irq_sim.c Documentation/admin-guide/gpio/gpio-sim.rst)
if ! step_done source; then
	log "extracting gpio-sim.c, irq_sim.c and gpio-sim.rst from linux-source-6.12 (takes ~1 min)"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	deb=$(deb_of linux-source-6.12)
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO ./usr/src/linux-source-6.12.tar.xz |
		tar -xJ -C "$SRC" --strip-components=1 "${SRC_FILES[@]/#/linux-source-6.12/}" ||
		die "extracting ${SRC_FILES[*]} from $deb failed"
	for f in "${SRC_FILES[@]}"; do [[ -f $SRC/$f ]] || die "$f missing from linux-source-6.12"; done
	mark_done source
fi

# --------------------------------------------------------------------- build
BUILD=$KDIR/build
if ! step_done modules; then
	log "building irq_sim.ko and gpio-sim.ko"
	rm -rf "$BUILD"
	mkdir -p "$BUILD"
	cp "$SRC/drivers/gpio/gpio-sim.c" "$SRC/kernel/irq/irq_sim.c" "$BUILD/"
	# irq_sim is built-in only upstream: irq_to_desc() is not exported, so go
	# through generic_handle_irq(), which calls the same handle_simple_irq.
	grep -q 'handle_simple_irq(irq_to_desc(irqnum));' "$BUILD/irq_sim.c" ||
		die "irq_sim.c changed: cannot find handle_simple_irq(irq_to_desc(irqnum))"
	sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$BUILD/irq_sim.c"
	printf '\nMODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("Interrupt simulator (out of tree build for gpiofs tests)");\n' >>"$BUILD/irq_sim.c"
	echo 'obj-m := irq_sim.o gpio-sim.o' >"$BUILD/Kbuild"
	make -s -C "$HDRS" M="$BUILD" CONFIG_DEBUG_INFO_BTF_MODULES= -j"$(nproc)" modules >"$BUILD/build.log" 2>&1 || {
		cat "$BUILD/build.log" >&2
		die "building the modules failed (log above, also in $BUILD/build.log)"
	}
	for m in irq_sim gpio-sim; do
		[[ -f $BUILD/$m.ko ]] || die "$BUILD/$m.ko was not built"
		[[ $(modinfo -F vermagic "$BUILD/$m.ko") == "$KREL "* ]] ||
			die "$m.ko has vermagic '$(modinfo -F vermagic "$BUILD/$m.ko")', want $KREL"
	done
	mark_done modules
fi
if [[ ! -s $KDIR/vmlinuz ]]; then
	cp "$ROOT/boot/vmlinuz-$KREL" "$KDIR/vmlinuz.tmp" && mv -f "$KDIR/vmlinuz.tmp" "$KDIR/vmlinuz"
fi

# ----------------------------------------------------------------- initramfs
# Modules the guest loads, in dependency order. fuse, virtio-pci, the virtio
# console, GPIO cdev and sysfs are built into the Debian kernel.
WANT=(configfs 9pnet_virtio 9p virtio_rng irq_sim gpio_sim)
declare -A MODFILE=() LOADED=()
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	MODFILE[${n//-/_}]=$f
done < <(find "$ROOT/lib/modules/$KREL/kernel" "$BUILD" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
ORDER=()
add_mod() {
	local n=${1//-/_} f d
	[[ -n ${LOADED[$n]:-} ]] && return 0
	f=${MODFILE[$n]:-}
	[[ -n $f ]] || die "module $n not found in $KREL or $BUILD"
	for d in $(modinfo -F depends "$f" | tr ',' ' '); do add_mod "$d"; done
	LOADED[$n]=1
	ORDER+=("$n")
}
for m in "${WANT[@]}"; do add_mod "$m"; done

INITRD=$KDIR/initramfs.cpio.gz
# rebuild when the init script, busybox, the module set or a module changes
stamp=$(
	{
		sha256sum "$HERE/guest-init.sh" /bin/busybox
		for n in "${ORDER[@]}"; do sha256sum "${MODFILE[$n]}"; done
	} | sed 's/ .*//' | sha256sum | cut -d' ' -f1
)
if [[ ! -s $INITRD || $(cat "$INITRD.stamp" 2>/dev/null) != "$stamp" ]]; then
	log "building initramfs (modules: ${ORDER[*]})"
	tmp=$(mktemp -d "$KDIR/.initramfs.XXXXXX")
	mkdir -p "$tmp"/{bin,dev,proc,sys,tmp,newroot,results,lib/modules}
	cp /bin/busybox "$tmp/bin/busybox"
	cp "$HERE/guest-init.sh" "$tmp/init"
	chmod 755 "$tmp/init" "$tmp/bin/busybox"
	for n in "${ORDER[@]}"; do
		f=${MODFILE[$n]}
		case $f in
		*.ko.xz) xz -dc "$f" ;;
		*.ko.zst) zstd -qdc "$f" ;;
		*.ko.gz) gzip -dc "$f" ;;
		*) cat "$f" ;;
		esac >"$tmp/lib/modules/$n.ko" || die "cannot decompress $f"
		echo "$n" >>"$tmp/lib/modules/load-order"
	done
	(cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$INITRD.tmp" ||
		die "cpio/gzip of the initramfs failed"
	rm -rf "$tmp"
	mv -f "$INITRD.tmp" "$INITRD"
	echo "$stamp" >"$INITRD.stamp"
fi

echo "$VERSION" >"$CACHE/current.tmp" && mv -f "$CACHE/current.tmp" "$CACHE/current"
# For run.sh: eval "$(setup.sh)"
printf 'GPIOFS_VM_VERSION=%q\nGPIOFS_VM_KREL=%q\nGPIOFS_VM_KERNEL=%q\nGPIOFS_VM_INITRD=%q\n' \
	"$VERSION" "$KREL" "$KDIR/vmlinuz" "$INITRD"
