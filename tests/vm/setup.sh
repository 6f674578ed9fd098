#!/usr/bin/env bash
# tests/vm/setup.sh [KERNEL]: prepare everything tests/vm/run.sh needs for
# one guest kernel. Idempotent: each step is skipped when its result is
# already in the cache. KERNEL (default 6.12):
#   6.12    Debian bookworm's 6.12, the kernel of Debian and Raspberry Pi OS
#           stable: the newest version for which the unsigned image, the amd64
#           and common headers, kbuild and linux-source-6.12 all exist
#           (gpio-sim is not built there: irq_sim.ko and gpio-sim.ko are built
#           out of tree against those headers);
#   newest  the newest kernel of Debian trixie-backports (7.3 when written):
#           its unsigned image and modules (gpio-sim is a module there, and
#           both sysfs GPIO ABIs are on). Read from a private apt state under
#           the cache, so the host's apt sources are untouched. A version
#           series such as 7.3 is accepted too, and must match the newest.
#
#  1. host tools (qemu-system-x86, busybox-static, gcc/make, cpio, kmod, ...)
#     installed with apt-get when missing;
#  2. the kernel's packages, downloaded with `apt-get download` and unpacked
#     with `dpkg-deb -x`;
#  3. (6.12 only) irq_sim.ko and gpio-sim.ko built out of tree;
#  4. a busybox initramfs (init = tests/vm/guest-init.sh) with the modules.
#
# Cache: ${GPIOFS_VM_CACHE:-$HOME/.cache/gpiofs-vm} (outside the repo, shared
# by every clone). Its file `current` names the 6.12 version in use,
# `current-newest` the trixie-backports one.
# Progress goes to stderr; stdout gets shell assignments for run.sh:
#   GPIOFS_VM_VERSION GPIOFS_VM_KREL GPIOFS_VM_KERNEL GPIOFS_VM_INITRD
#
# Environment:
#   GPIOFS_VM_CACHE           cache directory (see above)
#   GPIOFS_VM_KERNEL_VERSION  use this Debian version of linux-source-6.12
#                             (e.g. 6.12.117-1~deb12u1) instead of the cached
#                             one / the newest one (6.12 only)
#   GPIOFS_VM_REFRESH=1       look for a newer kernel even if one is cached
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GPIOFS_VM_CACHE:-${HOME:?HOME is not set}/.cache/gpiofs-vm}

log() { echo "gpiofs-vm setup: $*" >&2; }
die() {
	echo "gpiofs-vm setup: ERROR: $*" >&2
	exit 1
}
# shellcheck source=tests/vm/initramfs.sh
source "$HERE/initramfs.sh"

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

# ------------------------------------------------- the kernel and its modules
KERNEL=${1:-6.12}
case $KERNEL in
6.12)
	# shellcheck source=tests/vm/kernel-6.12.sh
	source "$HERE/kernel-6.12.sh"
	;;
newest | [1-9]*.[0-9]*)
	# shellcheck source=tests/vm/kernel-newest.sh
	source "$HERE/kernel-newest.sh"
	;;
*) die "unknown kernel '$KERNEL': want 6.12, newest or the newest's series (e.g. 7.3)" ;;
esac

# ----------------------------------------------------------------- initramfs
# WANT: the modules the guest loads; their dependencies come first.
declare -A MODFILE=() LOADED=()
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	MODFILE[${n//-/_}]=$f
done < <(find "${MODULE_DIRS[@]}" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
ORDER=()
add_mod() {
	local n=${1//-/_} f d
	[[ -n ${LOADED[$n]:-} ]] && return 0
	f=${MODFILE[$n]:-}
	[[ -n $f ]] || die "module $n not found in ${MODULE_DIRS[*]}"
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
	pack_initramfs "$tmp" "$INITRD" "$stamp"
fi

echo "$PIN" >"$CACHE/$CURRENT.tmp" && mv -f "$CACHE/$CURRENT.tmp" "$CACHE/$CURRENT"
# For run.sh: eval "$(setup.sh)"
printf 'GPIOFS_VM_VERSION=%q\nGPIOFS_VM_KREL=%q\nGPIOFS_VM_KERNEL=%q\nGPIOFS_VM_INITRD=%q\n' \
	"$VERSION" "$KREL" "$KDIR/vmlinuz" "$INITRD"
