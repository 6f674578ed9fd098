# tests/vm/kernel-newest.sh: sourced by setup.sh for KERNEL=newest (or its
# series, e.g. 7.3): the newest kernel of Debian trixie-backports, whose
# config has GPIO_SIM=m, IRQ_SIM=y, GPIO_SYSFS=y and GPIO_SYSFS_LEGACY=y, so
# nothing is built. Uses setup.sh's CACHE, KERNEL, log, die, deb_of; sets
# VERSION KREL KDIR MODULE_DIRS WANT CURRENT PIN and leaves $KDIR/vmlinuz.
#
# apt runs on a private state under $CACHE/apt-backports (its own sources
# list, package lists and caches), so the host's apt sources and lists are
# never changed. The archive key is the host's debian-archive-keyring.
# shellcheck shell=bash

CURRENT=current-newest
APT_DIR=$CACHE/apt-backports
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
	>"$APT_DIR/sources.list"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache"
	-o Dir::State::status=/dev/null -o APT::Sandbox::User=root
)
bp_update() {
	log "reading Debian trixie-backports' package list"
	apt-get -qq "${APT_OPTS[@]}" update >&2 || die "apt-get update of trixie-backports failed"
}
# PACKAGES of the kernel whose ABI (e.g. 7.3.4+deb13) is $1
bp_pkgs() { echo "linux-binary-unsigned-$1-amd64 linux-modules-$1-amd64"; }
bp_newest() { # -> "VERSION ABI" of the newest complete kernel
	local names abi v best='' best_abi='' p ok
	names=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-binary-unsigned- 2>/dev/null |
		sed -n 's/^linux-binary-unsigned-\(.*+deb[0-9]*\)-amd64$/\1/p')
	for abi in $names; do
		v=$(apt-cache "${APT_OPTS[@]}" show "linux-binary-unsigned-$abi-amd64" 2>/dev/null |
			sed -n 's/^Version: //p' | head -n 1)
		[[ -n $v ]] || continue
		ok=1
		for p in $(bp_pkgs "$abi"); do
			apt-cache "${APT_OPTS[@]}" show "$p=$v" >/dev/null 2>&1 || { ok=; break; }
		done
		[[ -n $ok ]] || continue
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then
			best=$v
			best_abi=$abi
		fi
	done
	[[ -n $best ]] && echo "$best $best_abi"
}

if [[ -z ${GPIOFS_VM_REFRESH:-} && -s $CACHE/$CURRENT ]]; then
	read -r VERSION ABI <"$CACHE/$CURRENT"
else
	[[ -s $APT_DIR/lists/deb.debian.org_debian_dists_trixie-backports_InRelease ]] || bp_update
	found=$(bp_newest) || {
		bp_update
		found=$(bp_newest) || die "trixie-backports has no complete kernel ($(bp_pkgs X))"
	}
	read -r VERSION ABI <<<"$found"
	log "newest Debian trixie-backports kernel: $VERSION ($ABI)"
fi
[[ $ABI =~ ^[0-9]+\.[0-9]+\.[0-9]+\+deb[0-9]+$ && $VERSION =~ ^[0-9][^/[:space:]]*$ ]] ||
	die "bad kernel '$VERSION $ABI' in $CACHE/$CURRENT"
if [[ $KERNEL != newest && $ABI != "$KERNEL".* ]]; then
	die "kernel $KERNEL asked for, but the newest trixie-backports kernel is $ABI" \
		"(GPIOFS_VM_REFRESH=1 looks again; or ask for 'newest')"
fi
KREL=$ABI-amd64
PIN="$VERSION $ABI"
KDIR=$CACHE/$ABI
ROOT=$KDIR/root
mkdir -p "$CACHE/debs" "$KDIR"

if [[ ! -e $KDIR/.done-unpack ]]; then
	todo=()
	for p in $(bp_pkgs "$ABI"); do deb_of "$p" >/dev/null || todo+=("$p=$VERSION"); done
	if ((${#todo[@]})); then
		apt-cache "${APT_OPTS[@]}" show "${todo[0]}" >/dev/null 2>&1 || bp_update
		log "downloading ${todo[*]} (about 120 MB)"
		tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
		(cd "$tmp" && apt-get -q "${APT_OPTS[@]}" download "${todo[@]}" >&2) || {
			rm -rf "$tmp"
			die "apt-get download ${todo[*]} failed"
		}
		mv "$tmp"/*.deb "$CACHE/debs/"
		rmdir "$tmp"
	fi
	log "unpacking the kernel image and modules $VERSION"
	rm -rf "$ROOT"
	for p in $(bp_pkgs "$ABI"); do
		f=$(deb_of "$p") || die "download did not produce $p $VERSION"
		dpkg-deb -x "$f" "$ROOT" || die "dpkg-deb -x $p failed"
	done
	[[ -f $ROOT/usr/lib/modules/$KREL/vmlinuz.unsigned ]] ||
		die "no usr/lib/modules/$KREL/vmlinuz.unsigned in linux-binary-unsigned"
	touch "$KDIR/.done-unpack"
fi
if [[ ! -s $KDIR/vmlinuz ]]; then
	cp "$ROOT/usr/lib/modules/$KREL/vmlinuz.unsigned" "$KDIR/vmlinuz.tmp" &&
		mv -f "$KDIR/vmlinuz.tmp" "$KDIR/vmlinuz"
fi

# Modules the guest loads (irq_sim, fuse, virtio-pci, the virtio console,
# GPIO cdev and sysfs are built in).
MODULE_DIRS=("$ROOT/usr/lib/modules/$KREL/kernel")
WANT=(configfs 9pnet_virtio 9p virtio_rng gpio_sim)
