#!/usr/bin/env bash
# contrib/deb/build.sh [ARCH...]: builds gpiofs's Debian packages for ARCH
# (amd64, arm64, armhf; default all three) into target/debian/ and checks
# each with lintian, failing on any lintian error. Installs what it needs:
# lintian and the cross linkers (apt), the Rust targets (rustup), cargo-deb
# (crates.io). armhf is Debian's armhf (ARMv7: Raspberry Pi 2 and later); the
# ARMv6 Pi 1 and Zero (first model) are not covered.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_DEB_VERSION=3.8.0
archs=("$@")
((${#archs[@]})) || archs=(amd64 arm64 armhf)

rust_target() {
    case $1 in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    armhf) echo armv7-unknown-linux-gnueabihf ;;
    *) echo "unknown architecture '$1' (amd64, arm64, armhf)" >&2; return 1 ;;
    esac
}
gnu_triplet() {
    case $1 in
    arm64) echo aarch64-linux-gnu ;;
    armhf) echo arm-linux-gnueabihf ;;
    esac
}

host=$(dpkg --print-architecture)
need=()
command -v lintian >/dev/null || need+=(lintian)
for arch in "${archs[@]}"; do
    rust_target "$arch" >/dev/null
    triplet=$(gnu_triplet "$arch")
    if [[ $arch != "$host" && -n $triplet ]] && ! command -v "$triplet-gcc" >/dev/null; then
        need+=("gcc-$triplet" "libc6-dev-$arch-cross")
    fi
done
if ((${#need[@]})); then
    echo "== apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [[ $(cargo deb --version 2>/dev/null) != *"$CARGO_DEB_VERSION"* ]]; then
    echo "== cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --version "$CARGO_DEB_VERSION" cargo-deb
fi

# Man page and completions come from the clap definition; they are the same
# for every architecture.
echo "== man page and completions"
cargo run --quiet --release --example generate_docs -- target/deb-docs

mkdir -p target/debian
status=0
for arch in "${archs[@]}"; do
    target=$(rust_target "$arch")
    triplet=$(gnu_triplet "$arch")
    echo "== $arch ($target)"
    if [[ $arch != "$host" && -n $triplet ]]; then
        rustup target list --installed | grep -qx "$target" || rustup target add "$target"
        var=CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_LINKER
        export "$var=$triplet-gcc"
    fi
    # The host's own architecture reuses target/release.
    target_args=()
    [[ $arch == "$host" ]] || target_args=(--target "$target")
    built=$(cargo deb "${target_args[@]}" | tail -n 1)
    deb=target/debian/$(basename "$built")
    [[ $built -ef $deb ]] || cp "$built" "$deb"
    echo "$deb"
    echo "== lintian $deb"
    lintian --fail-on error "$deb" || status=1
done
exit "$status"
