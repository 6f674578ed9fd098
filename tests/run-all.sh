#!/usr/bin/env bash
# Runs every test of gpiofs: formatting and lint; unit, FUSE integration
# and soak tests on the simulator (daemon, benchmark, gpiofs-mqtt, the
# fuser patch); the real gpiozero through the pin factory; the real-kernel
# suite in QEMU VMs (Debian 6.12 and the newest Debian kernel); a quick
# run of the VM benchmark; the Debian package installed and run under
# systemd in a VM.
# Installs what it needs (Debian packages, the VMs' kernels and images).
# Every suite runs even if an earlier one failed; the last line sums them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# fuse3: fusermount3 for --auto-unmount; mosquitto and openssl: the
# gpiofs-mqtt tests start a broker on 127.0.0.1 with a TLS certificate.
need_pkgs=()
for pkg in fuse3 python3 python3-venv mosquitto mosquitto-clients openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    step "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
mkdir -p target

status=0
summary=()
# cargo's "test result:" lines of LOG, summed, as SUITE's counts.
count_cargo() {
    local suite=$1 log=$2 counts
    counts=$(grep -E '^test result:' "$log" | awk '{p+=$4; f+=$6} END {print p+0, f+0}' || true)
    # No result line at all (it did not build): one failure.
    [[ $counts == "0 0" ]] && counts="0 1"
    summary+=("$suite $counts")
}
# The last "SUITE: N passed, M failed" line of LOG (none: 1 failure).
count_line() {
    local suite=$1 log=$2 counts
    counts=$(sed -n "s/^$suite: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p" "$log" | tail -n 1 || true)
    summary+=("$suite ${counts:-0 1}")
}

step "cargo fmt --check"
cargo fmt --all -- --check || status=1

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings || status=1

step "unit, FUSE integration and soak tests (simulated chips)"
cargo build --release --workspace --bins
cargo test --release --workspace --no-fail-fast 2>&1 | tee target/native-tests.log || status=1
count_cargo native target/native-tests.log

step "the fuser patch's own test (vendor/fuser)"
cargo test --release --manifest-path vendor/fuser/Cargo.toml --test interrupt 2>&1 |
    tee target/fuser-tests.log || status=1
count_cargo fuser-patch target/fuser-tests.log

step "gpiozero through the gpiofs pin factory (tests/gpiozero/run.sh)"
tests/gpiozero/run.sh 2>&1 | tee target/gpiozero-tests.log || status=1
count_line gpiozero target/gpiozero-tests.log

step "real-kernel suite in QEMU VMs (gpio-sim; Debian 6.12 and newest)"
tests/vm/run-suite.sh 2>&1 | tee target/vm-tests.log || status=1
count_line vm target/vm-tests.log

step "the VM benchmark, --quick (tests/vm/bench-smoke.sh: contrib/bench/run-vm.sh)"
tests/vm/bench-smoke.sh 2>&1 | tee target/bench-vm-smoke.log || status=1
count_line bench-vm target/bench-vm-smoke.log

step "Debian package (amd64) installed and run under systemd in a VM"
rm -f target/debian/gpiofs_*_amd64.deb
{ contrib/deb/build.sh amd64 && tests/vm/systemd/run.sh target/debian/gpiofs_*_amd64.deb; } 2>&1 |
    tee target/systemd-vm.log || status=1
count_line systemd target/systemd-vm.log

# ARM (issue 10): the unit tests under qemu-user, and the real-kernel suite
# in emulated arm64 (Linux 7.3) and armhf (Linux 6.12) guests, on
# cross-built static binaries (contrib/cross, tests/vm/arm)
for arch in arm64 armhf; do
    step "unit tests for $arch under qemu-user (contrib/cross/build.sh --test $arch)"
    contrib/cross/build.sh --test "$arch" 2>&1 | tee "target/unit-tests-$arch.log" || status=1
    count_cargo "native-$arch" "target/unit-tests-$arch.log"
    if [[ $arch == armhf ]]; then
        step "cargo clippy for armhf (32-bit: off_t, time_t and rlimit widths differ)"
        cargo clippy --target armv7-unknown-linux-gnueabihf --workspace --all-targets -- -D warnings || status=1
    fi
    step "real-kernel suite in an emulated $arch VM (tests/vm/run-suite.sh --arch $arch)"
    tests/vm/run-suite.sh --arch "$arch" 2>&1 | sed "s/^vm: /vm-$arch: /" | tee "target/vm-tests-$arch.log" || status=1
    count_line "vm-$arch" "target/vm-tests-$arch.log"
done

echo
total_passed=0 total_failed=0
for entry in "${summary[@]}"; do
    read -r suite passed failed <<<"$entry"
    echo "$suite: $passed passed, $failed failed"
    total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
done
((total_failed == 0)) || status=1
echo "total: $total_passed passed, $total_failed failed"
exit "$status"
