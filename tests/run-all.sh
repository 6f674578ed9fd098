#!/usr/bin/env bash
# Runs every test of gpiofs: formatting and lint, unit and FUSE integration
# tests on the simulator, then the real-kernel suite in a QEMU VM.
# Installs what it needs (Debian packages, the VM's kernel and modules).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

need_pkgs=()
for pkg in fuse3 python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    step "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

# gpiofs watches held readers' signals through kernel tracepoints where
# tracefs is mounted, as systemd mounts it; the tests should see that path.
if [[ -d /sys/kernel/tracing && ! -e /sys/kernel/tracing/events ]]; then
    mount -t tracefs nodev /sys/kernel/tracing || echo "warning: cannot mount tracefs"
fi

step "unit and FUSE integration tests (simulated chips)"
cargo build --release --bins
cargo test --release 2>&1 | tee target/native-tests.log
native=$(grep -E '^test result:' target/native-tests.log | awk '{p+=$4; f+=$6} END {print p+0, f+0}')

step "real-kernel suite in a QEMU VM (gpio-sim)"
vm_status=0
tests/vm/run-suite.sh 2>&1 | tee target/vm-tests.log || vm_status=$?
read -r vm_passed vm_failed < <(sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' target/vm-tests.log | tail -n 1)

# ---- ARM (issue 10): the unit tests under qemu-user, and the real-kernel
# suite in emulated arm64 (Linux 7.3) and armhf (Linux 6.12) guests, on
# cross-built static binaries (contrib/cross, tests/vm/arm)
arm_passed=0 arm_failed=0 arm_status=0
for arch in arm64 armhf; do
    step "unit tests for $arch under qemu-user (contrib/cross/build.sh --test $arch)"
    rc=0
    contrib/cross/build.sh --test "$arch" 2>&1 | tee "target/unit-tests-$arch.log" || rc=1 arm_status=1
    read -r p f < <(grep -E '^test result:' "target/unit-tests-$arch.log" | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
    ((rc == 0 || f > 0)) || f=1 # a build that failed counts as a failure
    arm_passed=$((arm_passed + p)) arm_failed=$((arm_failed + f))
    step "real-kernel suite in an emulated $arch VM (tests/vm/run-suite.sh --arch $arch)"
    tests/vm/run-suite.sh --arch "$arch" 2>&1 | tee "target/vm-tests-$arch.log" || arm_status=1
    p='' f=''
    read -r p f < <(sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "target/vm-tests-$arch.log" | tail -n 1) || true
    arm_passed=$((arm_passed + ${p:-0})) arm_failed=$((arm_failed + ${f:-1}))
done
# ---- end ARM

read -r passed failed <<<"$native"
echo
echo "native: $passed passed, $failed failed"
echo "vm: ${vm_passed:-0} passed, ${vm_failed:-?} failed"
echo "vm-arm: $arm_passed passed, $arm_failed failed"
echo "total: $((passed + ${vm_passed:-0} + arm_passed)) passed, $((failed + ${vm_failed:-1} + arm_failed)) failed"
((vm_status == 0 && arm_status == 0))
