#!/usr/bin/env bash
# contrib/cross/build.sh arm64|armhf [CARGO BUILD ARGS...]: cross-build gpiofs
# for Raspberry Pi OS 64-bit (arm64: aarch64-unknown-linux-gnu) or 32-bit
# (armhf: armv7-unknown-linux-gnueabihf) on a Debian/Ubuntu amd64 machine.
# Installs what is missing (the rustup target; Debian's cross gcc, which
# .cargo/config.toml names as the linker), then runs
#   cargo build --release --target TARGET [ARGS...]
# (ARGS default: every binary). The binaries are statically linked (glibc,
# crt-static): copy target/TARGET/release/gpiofs to the Pi and run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

case ${1:-} in
arm64) TARGET=aarch64-unknown-linux-gnu GCC=gcc-aarch64-linux-gnu ;;
armhf) TARGET=armv7-unknown-linux-gnueabihf GCC=gcc-arm-linux-gnueabihf ;;
*)
	echo "usage: $0 arm64|armhf [cargo build args...]" >&2
	exit 2
	;;
esac
shift
die() {
	echo "cross-build: ERROR: $*" >&2
	exit 1
}

if ! rustup target list --installed | grep -qx "$TARGET"; then
	echo "cross-build: rustup target add $TARGET" >&2
	rustup target add "$TARGET" >&2 || die "rustup target add $TARGET failed"
fi
if ! dpkg-query -W -f='${Status}' "$GCC" 2>/dev/null | grep -q 'install ok installed'; then
	[[ $(id -u) == 0 ]] || die "the linker is missing: apt-get install $GCC (as root)"
	echo "cross-build: installing $GCC" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$GCC" >&2; } ||
		die "apt-get install $GCC failed"
fi
cargo build --release --target "$TARGET" "$@" >&2 || die "cargo build --release --target $TARGET $* failed"
echo "target/$TARGET/release"
