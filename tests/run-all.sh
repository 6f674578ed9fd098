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
# --- gpiofs-mqtt (contrib/gpiofs-mqtt): its tests start a real mosquitto
# on 127.0.0.1 and make a TLS CA and certificate with openssl.
mqtt_pkgs=()
for pkg in mosquitto mosquitto-clients openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || mqtt_pkgs+=("$pkg")
done
if ((${#mqtt_pkgs[@]})); then
    step "installing ${mqtt_pkgs[*]} (gpiofs-mqtt tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${mqtt_pkgs[@]}" >/dev/null
fi
# --- end gpiofs-mqtt
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# gpiofs watches held readers' signals through kernel tracepoints where
# tracefs is mounted, as systemd mounts it; the tests should see that path.
if [[ -d /sys/kernel/tracing && ! -e /sys/kernel/tracing/events ]]; then
    mount -t tracefs nodev /sys/kernel/tracing || echo "warning: cannot mount tracefs"
fi

step "unit and FUSE integration tests (simulated chips)"
cargo build --release --workspace --bins
cargo test --release --workspace 2>&1 | tee target/native-tests.log
native=$(grep -E '^test result:' target/native-tests.log | awk '{p+=$4; f+=$6} END {print p+0, f+0}')

# --- gpiozero (issue 14): the real gpiozero on gpiofs through its pin factory ---
step "gpiozero through the gpiofs pin factory (tests/gpiozero/run.sh)"
tests/gpiozero/run.sh
# --- end gpiozero ---

step "real-kernel suite in a QEMU VM (gpio-sim)"
vm_status=0
tests/vm/run-suite.sh 2>&1 | tee target/vm-tests.log || vm_status=$?
read -r vm_passed vm_failed < <(sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' target/vm-tests.log | tail -n 1)

# ---- Debian package + systemd VM test (contrib/deb, tests/vm/systemd) ----
step "Debian package (amd64) and the systemd VM test"
rm -f target/debian/gpiofs_*_amd64.deb
systemd_status=0
{ contrib/deb/build.sh amd64 && tests/vm/systemd/run.sh target/debian/gpiofs_*_amd64.deb; } 2>&1 |
    tee target/systemd-vm.log || systemd_status=$?
((systemd_status == 0)) || vm_status=$systemd_status
# ---- end of the Debian package step ----

read -r passed failed <<<"$native"
echo
echo "native: $passed passed, $failed failed"
echo "vm: ${vm_passed:-0} passed, ${vm_failed:-?} failed"
echo "total: $((passed + ${vm_passed:-0})) passed, $((failed + ${vm_failed:-1})) failed"
exit "$vm_status"
