# tests/vm/kernel-6.12.sh: sourced by setup.sh for KERNEL=6.12 (Debian
# bookworm's 6.12, gpio-sim built out of tree). Uses setup.sh's CACHE, log,
# die, deb_of; sets VERSION KREL KDIR MODULE_DIRS WANT CURRENT PIN and leaves
# $KDIR/vmlinuz.
# shellcheck shell=bash

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

# Modules the guest loads. fuse, virtio-pci, the virtio console, GPIO cdev
# and sysfs are built into the Debian kernel.
MODULE_DIRS=("$ROOT/lib/modules/$KREL/kernel" "$BUILD")
WANT=(configfs 9pnet_virtio 9p virtio_rng irq_sim gpio_sim)
CURRENT=current
PIN=$VERSION
