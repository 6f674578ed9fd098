#!/usr/bin/env bash
# contrib/cross/build.sh [--test] arm64|armhf [CARGO ARGS...]: cross-build gpiofs
# for Raspberry Pi OS 64-bit (arm64: aarch64-unknown-linux-gnu) or 32-bit
# (armhf: armv7-unknown-linux-gnueabihf) on a Debian/Ubuntu amd64 machine.
# Installs what is missing (the rustup target; Debian's cross gcc, which
# .cargo/config.toml names as the linker), then runs
#   cargo build --release --target TARGET [ARGS...]
# (ARGS default: every binary). The binaries are statically linked (glibc,
# crt-static): copy target/TARGET/release/gpiofs to the Pi and run it.
# Prints the binaries' directory on stdout.
#
# --test: instead, run the library's unit tests for TARGET under qemu-user
# (Debian's qemu-user-static, installed if missing): cargo test --release
# --target TARGET --lib [ARGS...]. They check the uAPI layouts and parsers
# on the target's word size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

TEST=
[[ ${1:-} == --test ]] && { TEST=1; shift; }

case ${1:-} in
arm64) TARGET=aarch64-unknown-linux-gnu GCC=gcc-aarch64-linux-gnu QEMU=qemu-aarch64-static ;;
armhf) TARGET=armv7-unknown-linux-gnueabihf GCC=gcc-arm-linux-gnueabihf QEMU=qemu-arm-static ;;
*)
	echo "usage: $0 [--test] arm64|armhf [cargo args...]" >&2
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
# shellcheck source=contrib/cross/apt-need.sh
. contrib/cross/apt-need.sh
need=("$GCC")
[[ -n $TEST ]] && need+=(qemu-user-static)
apt_need "${need[@]}" || die "cannot install ${need[*]}"
if [[ -n $TEST ]]; then
	runner=CARGO_TARGET_$(echo "$TARGET" | tr a-z- A-Z_)_RUNNER
	export "$runner=$QEMU"
	exec cargo test --release --target "$TARGET" --lib "$@"
fi
cargo build --release --target "$TARGET" "$@" >&2 || die "cargo build --release --target $TARGET $* failed"
echo "target/$TARGET/release"
