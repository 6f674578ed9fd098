#!/usr/bin/env bash
# tests/vm/run-suite.sh: the real-kernel test suite of gpiofs (called by
# tests/run-all.sh). Builds gpiofs on the host (cargo build --release),
# installs libgpiod's tools (Debian package gpiod) if missing, then boots ONE
# QEMU VM per kernel (tests/vm/run.sh --kernel K, gpio-sim loaded) that runs
# tests/vm/suite/guest.sh:
#   nochips  gpiofs started with no GPIO chip mounts an empty tree, says it
#            waits, and serves gpio-sim chips created and removed later
#   real     gpiofs on gpio-sim: export/values/errnos/poll/inotify/events,
#            EBUSY against other holders, consumer label, live reconfiguration
#   hotplug  chips created and removed while mounted
#   diff     the same scenario against the kernel's /sys/class/gpio and
#            gpiofs; differences not in suite/known-differences*.txt fail
# then compares the two kernels' own sysfs records (suite/kernels.py):
# differences not in suite/kernel-differences.txt fail.
#
# usage: tests/vm/run-suite.sh [--kernel 6.12|newest|7.3|all]   (default all:
#        6.12, then trixie-backports' newest)
#        tests/vm/run-suite.sh --arch arm64|armhf   (an emulated ARM guest)
# Records and logs land in target/vm-suite/<kernel>/ (kernel.json,
# gpiofs.json, diff.txt, gpiofs-*.log, output.log) and
# target/vm-suite/kernels.txt.
#
# Ends with "vm: N passed, M failed" over all kernels; exits non-zero on any
# failure, and when a VM cannot run (never skips).
#
# Environment: GPIOFS_SUITE_ONLY="real diff" runs only those parts;
# GPIOFS_SUITE_TIMEOUT (default 1500 s) bounds each VM run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T0=$(date +%s)
OUT=target/vm-suite

# --arch amd64|arm64|armhf: the guest's architecture; an ARM guest has one
# kernel of its own, and its records go to target/vm-suite/ARCH/
# (tests/vm/arm/README.md)
ARCH=amd64
KERNELS=(6.12 newest)
while (($#)); do
	case $1 in
	--arch) ARCH=${2:?--arch needs amd64, arm64 or armhf}; shift 2 ;;
	--arch=*) ARCH=${1#*=}; shift ;;
	--kernel) [[ ${2:-} == all ]] && KERNELS=(6.12 newest) || KERNELS=("${2:?--kernel needs a value}"); shift 2 ;;
	--kernel=*) [[ ${1#*=} == all ]] && KERNELS=(6.12 newest) || KERNELS=("${1#*=}"); shift ;;
	-h | --help) sed -n '/^# usage:/,/^#        6.12/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "vm-suite: unknown option '$1'" >&2; exit 2 ;;
	esac
done
[[ $ARCH == amd64 ]] || KERNELS=("$ARCH")

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

total_passed=0 total_failed=0
summary=()
# One VM run on kernel $1; adds to the totals.
run_kernel() {
	local k=$1 dir=$OUT/$1 log rc=0 passed failed t=$SECONDS
	log=$dir/output.log
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "vm-suite: kernel $k: booting the VM (tests/vm/run.sh --kernel $k)"
	GPIOFS_BIN=$PWD/$BIN GPIOFS_SUITE_ARTIFACTS=$PWD/$dir \
		bash tests/vm/run.sh --kernel "$k" --timeout "${GPIOFS_SUITE_TIMEOUT:-1500}" -- bash tests/vm/suite/guest.sh 2>&1 |
		tee "$log" || rc=${PIPESTATUS[0]}
	passed=$(grep -c '^ok - ' "$log" || true)
	failed=$(grep -c '^FAIL - ' "$log" || true)
	if ((rc != 0)); then
		echo "FAIL - [suite] the VM run exited with status $rc (124: timeout, 125: the VM failed)" | tee -a "$log"
		failed=$((failed + 1))
	elif ! grep -qx 'vm-suite: complete' "$log"; then
		echo "FAIL - [suite] the suite did not report completion" | tee -a "$log"
		failed=$((failed + 1))
	fi
	if ((passed == 0 && failed == 0)); then
		echo "FAIL - [suite] no check ran" | tee -a "$log"
		failed=1
	fi
	summary+=("kernel $k ($(sed -n 's/^# kernel \([^ ,]*\).*/\1/p' "$log" | head -n 1)): $passed passed, $failed failed, $((SECONDS - t)) s")
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
}
for k in "${KERNELS[@]}"; do run_kernel "$k"; done

# The two kernels' own behaviour, side by side.
if ((${#KERNELS[@]} == 2)) && [[ -s $OUT/6.12/kernel.json && -s $OUT/newest/kernel.json ]]; then
	kout=$OUT/kernels.log
	/usr/bin/python3 tests/vm/suite/kernels.py "$OUT/6.12/kernel.json" "$OUT/newest/kernel.json" \
		"$OUT/kernels.txt" 2>&1 | tee "$kout" || true
	p=$(grep -c '^ok - ' "$kout" || true)
	f=$(grep -c '^FAIL - ' "$kout" || true)
	((p + f > 0)) || { echo "FAIL - [kernels] the comparison reported nothing" | tee -a "$kout"; f=1; }
	summary+=("6.12 vs newest: $p passed, $f failed")
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
fi

if ((total_failed)); then
	echo
	echo "vm-suite: failures:"
	for k in "${KERNELS[@]}"; do
		grep '^FAIL - ' "$OUT/$k/output.log" 2>/dev/null | sed "s/^/  [$k] /"
	done
	grep '^FAIL - ' "$OUT/kernels.log" 2>/dev/null | sed 's/^/  /' || true
fi
echo
for s in "${summary[@]}"; do echo "vm-suite: $s"; done
echo "vm-suite: took $(($(date +%s) - T0)) s (build and VMs)"
echo "vm: $total_passed passed, $total_failed failed"
((total_failed == 0))
