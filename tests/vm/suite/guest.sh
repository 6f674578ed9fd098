#!/usr/bin/env bash
# tests/vm/suite/guest.sh: the real-kernel suite, INSIDE the test VM (one
# boot for everything). Started by tests/vm/run-suite.sh through
# tests/vm/run.sh; prints one "ok - ..." / "FAIL - ..." line per check and
# ends with "vm-suite: complete" when every part was run.
#
# Parts (each a python3 script of this directory, with its own time limit):
#   nochips (before any chip exists)  real  hotplug  diff  nochips (after)
# Set GPIOFS_SUITE_ONLY="real diff" to run only some of them.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ ${GPIOFS_VM:-} == 1 ]] || {
	echo "guest.sh: run me inside the VM: tests/vm/run-suite.sh" >&2
	exit 2
}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
export PYTHONDONTWRITEBYTECODE=1 # the repo may be read-only here
export GPIOFS_SUITE_ARTIFACTS=${GPIOFS_SUITE_ARTIFACTS:-$PWD/target/vm-suite}
mkdir -p "$GPIOFS_SUITE_ARTIFACTS" /tmp/vmsuite
# shellcheck source=tests/vm/gpio-sim.sh
source "$HERE/../gpio-sim.sh"

echo "# kernel $(uname -r), $(nproc) cpus, gpiofs ${GPIOFS_BIN:-target/release/gpiofs}"
[[ -x ${GPIOFS_BIN:-target/release/gpiofs} ]] || {
	echo "FAIL - [suite] no gpiofs binary at ${GPIOFS_BIN:-target/release/gpiofs} (build it on the host)"
	exit 1
}

cleanup_between() {
	# a part that died may leave mounts and chips behind; the next part
	# starts clean (these are mounts and sims of this VM only)
	# (no process substitution: the VM's /dev has no /dev/fd)
	awk '$2 ~ "^/tmp/vmsuite/" { print $2 }' /proc/mounts | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	gpio_sim_remove_all 2>/dev/null || true
}

part() { # NAME TIMEOUT SCRIPT [ARGS...]
	local name=$1 limit=$2 rc=0 t0
	shift 2
	if [[ -n ${GPIOFS_SUITE_ONLY:-} && " $GPIOFS_SUITE_ONLY " != *" $name "* ]]; then
		return 0
	fi
	t0=$EPOCHREALTIME
	echo "# ---- $name"
	timeout -k 10 "$limit" "$PY" "$HERE/$1" "${@:2}" || rc=$?
	if ((rc == 124 || rc == 137)); then
		echo "FAIL - [$name] timed out after ${limit}s"
	elif ((rc != 0)); then
		echo "FAIL - [$name] did not run to its end (exit $rc)"
	fi
	awk -v n="$name" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "# ---- %s took %.1f s\n", n, b - a }'
	cleanup_between
}

part nochips 60 test_nochips.py "before any chip exists"
part real 400 test_real.py
part hotplug 200 test_hotplug.py
part diff 600 diff.py
part nochips 60 test_nochips.py "after all chips were removed"
echo "vm-suite: complete"
