#!/usr/bin/env bash
# tests/vm/run-suite.sh: the real-kernel test suite of gpiofs (called by
# tests/run-all.sh). Builds gpiofs on the host (cargo build --release),
# installs libgpiod's tools (Debian package gpiod) if missing, then boots ONE
# QEMU VM (tests/vm/run.sh: Linux 6.12 with gpio-sim) that runs
# tests/vm/suite/guest.sh:
#   nochips  gpiofs with no GPIO chip fails clearly and mentions --sim
#   real     gpiofs on gpio-sim: export/values/errnos/poll/inotify/events,
#            EBUSY against other holders, consumer label, live reconfiguration
#   hotplug  chips created and removed while mounted
#   diff     the same scenario against the kernel's /sys/class/gpio and
#            gpiofs; differences not in suite/known-differences.txt fail
# Records and logs land in target/vm-suite/ (kernel.json, gpiofs.json,
# diff.txt, gpiofs-*.log, output.log).
#
# Ends with "vm: N passed, M failed"; exits non-zero on any failure, and when
# the VM cannot run (never skips).
#
# Environment: GPIOFS_SUITE_ONLY="real diff" runs only those parts;
# GPIOFS_SUITE_TIMEOUT (default 1500 s) bounds the whole VM run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T0=$(date +%s)
# --arch amd64|arm64|armhf: the guest's architecture (tests/vm/arm/README.md)
ARCH=amd64
case ${1:-} in --arch) ARCH=${2:-}; shift 2 || shift ;; --arch=*) ARCH=${1#*=}; shift ;; esac
OUT=target/vm-suite
[[ $ARCH == amd64 ]] || OUT+=-$ARCH
LOG=$OUT/output.log

fail_early() {
	echo "vm-suite: ERROR: $*" >&2
	echo "vm: 0 passed, 1 failed"
	exit 1
}
BIN=target/release/gpiofs
case $ARCH in
amd64) ;;
arm64 | armhf)
	echo "vm-suite: contrib/cross/build.sh $ARCH --bin gpiofs"
	BIN=$(contrib/cross/build.sh "$ARCH" --bin gpiofs)/gpiofs || fail_early "the $ARCH cross build failed"
	export GPIOFS_VM_ARCH=$ARCH
	;;
*) fail_early "--arch must be amd64, arm64 or armhf, not '$ARCH'" ;;
esac

if ! command -v gpioinfo >/dev/null || ! command -v gpioset >/dev/null || ! command -v gpiomon >/dev/null; then
	echo "vm-suite: installing libgpiod's tools (Debian package gpiod)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gpiod >/dev/null; } ||
		fail_early "cannot install the gpiod package (gpioinfo, gpioset, gpiomon are needed)"
fi
[[ -x /usr/bin/python3 ]] || fail_early "/usr/bin/python3 is needed (the tests run with it inside the VM)"

echo "vm-suite: cargo build --release"
cargo build --release || fail_early "cargo build --release failed"
[[ -x target/release/gpiofs ]] || fail_early "no target/release/gpiofs after the build"

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/diff.txt

echo "vm-suite: booting the VM (tests/vm/run.sh)"
rc=0
GPIOFS_BIN=$PWD/$BIN GPIOFS_SUITE_ARTIFACTS=$PWD/$OUT \
	bash tests/vm/run.sh --timeout "${GPIOFS_SUITE_TIMEOUT:-1500}" -- bash tests/vm/suite/guest.sh 2>&1 |
	tee "$LOG" || rc=${PIPESTATUS[0]}

passed=$(grep -c '^ok - ' "$LOG" || true)
failed=$(grep -c '^FAIL - ' "$LOG" || true)
if ((rc != 0)); then
	echo "FAIL - [suite] the VM run exited with status $rc (124: timeout, 125: the VM failed)" | tee -a "$LOG"
	failed=$((failed + 1))
elif ! grep -qx 'vm-suite: complete' "$LOG"; then
	echo "FAIL - [suite] the suite did not report completion" | tee -a "$LOG"
	failed=$((failed + 1))
fi
if ((passed == 0 && failed == 0)); then
	echo "FAIL - [suite] no check ran" | tee -a "$LOG"
	failed=1
fi
if ((failed)); then
	echo
	echo "vm-suite: failures (log: $LOG):"
	grep '^FAIL - ' "$LOG" | sed 's/^/  /'
fi
echo "vm-suite: took $(($(date +%s) - T0)) s (build and VM)"
echo "vm: $passed passed, $failed failed"
((failed == 0))
