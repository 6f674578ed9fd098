#!/usr/bin/env bash
# contrib/bench/profile-vm.sh: where the daemon's CPU goes on a real kernel,
# gpiofs next to the FUSE floor, inside the test VM (tests/vm/run.sh: a
# Debian kernel, gpio-sim, QEMU TCG). In one boot, on one gpio-sim line, for
# each of floor (fuse_floor --edges), gpiofs-before (if given) and gpiofs,
# `perf record` (cpu-clock, DWARF call graphs) samples the daemon while
# gpiofs-bench makes edges back to back for each poller count, and writes
#   <name>-poll<P>.data   the samples (perf report -i ... --kallsyms kallsyms)
#   <name>-poll<P>.txt    gpiofs-bench's output
#   kallsyms              the guest kernel's symbols
#   profile.txt           samples per thread, the top call-graph entries
#                         (inclusive) and the top functions (self) of each
# The report is made on the host with the host's perf; inside, the guest
# runs the host's perf through the VM's share of the host root (perf's
# kernel interface is stable across kernel versions).
#
# usage: contrib/bench/profile-vm.sh [--out DIR] [--seconds N] [--pollers "1 128 1024"]
#   --out DIR        results directory [default: target/bench/profile-vm-<date>-<time>]
#   --seconds N      seconds sampled per profile [default: 10]
#   --pollers LIST   poller counts profiled [default: "1 128 1024"]
# Environment:
#   GPIOFS_BENCH_BEFORE      another gpiofs binary (not under /tmp: the guest
#                            has a /tmp of its own), profiled as gpiofs-before
#   GPIOFS_VM_KERNEL_SERIES  the guest kernel: 6.12 (default) or newest
#   GPIOFS_PROFILE_FREQ      sampling frequency in Hz [default: 499]
#
# Takes about 10 minutes on a 2-core machine. Needs root (installs Debian's
# linux-perf on the host if perf is missing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=contrib/bench/common.sh
. "$HERE/common.sh"

# ---------------------------------------------------------- inside the VM

# profile_daemon OUT NAME PID SECS POLLERS BENCH-ARGS...: for each poller
# count, samples PID while gpiofs-bench makes edges
profile_daemon() {
	local out=$1 name=$2 pid=$3 secs=$4 pollers=$5 p bench
	shift 5
	for p in $pollers; do
		"$REPO/target/release/gpiofs-bench" --label "$name" "$@" --pollers "$p" --edges 1000000 \
			--row-edges "$p=1000000" --throughput-secs 0.3 >"$out/$name-poll$p.txt" 2>&1 &
		bench=$!
		# until every poller is open and the edges run (the throughput
		# phases and opening 1024 files take seconds under emulation)
		sleep $((5 + p / 100))
		kill -0 "$bench" 2>/dev/null || { echo "# $name, $p pollers: gpiofs-bench ended early:"; cat "$out/$name-poll$p.txt"; return 1; }
		echo "# $name: $p pollers, perf record for $secs s"
		# to the guest's tmpfs, copied out afterwards: writing over the
		# share while sampling would cost the VM's CPUs
		perf record -q -o "/tmp/$name-poll$p.data" -e cpu-clock -F "${GPIOFS_PROFILE_FREQ:-499}" \
			--call-graph dwarf,8192 -p "$pid" -- sleep "$secs" >/dev/null 2>&1 || {
			echo "# perf record failed"
			return 1
		}
		kill -INT "$bench" 2>/dev/null || true
		wait "$bench" 2>/dev/null || true
		cp "/tmp/$name-poll$p.data" "$out/" && rm -f "/tmp/$name-poll$p.data"
	done
}

guest() {
	local out=$1 secs=$2 pollers=$3 rc=0
	[[ ${GPIOFS_VM:-} == 1 ]] || die "--guest runs inside the VM (tests/vm/run.sh)"
	# shellcheck source=tests/vm/gpio-sim.sh disable=SC1091
	source "$REPO/tests/vm/gpio-sim.sh"
	local bin=$REPO/target/release
	echo "# VM: kernel $(uname -r), $(nproc) CPUs; $(perf --version)"
	cp /proc/kallsyms "$out/kallsyms"
	gpio_sim_create bench 8 >/dev/null
	local dev chip trigger
	dev=$(gpio_sim_dev bench)
	chip=$(gpio_sim_chip bench)
	trigger=/sys/devices/platform/$dev/$chip/sim_gpio0/pull

	local fmnt=/tmp/profile-floor fpid
	mkdir -p "$fmnt"
	"$bin/fuse_floor" "$fmnt" --edges "/dev/$chip:0" >"$out/floor.log" 2>&1 &
	fpid=$!
	if wait_for "$fmnt/value" "$fpid" 60; then
		profile_daemon "$out" floor "$fpid" "$secs" "$pollers" --value-file "$fmnt/value" --trigger "$trigger" || rc=1
	else
		echo "# floor: the fuse_floor mount did not come up (log: $out/floor.log)"
		rc=1
	fi
	stop_daemon "$fpid" "$fmnt"

	profile_gpiofs() { # NAME BINARY
		local name=$1 gmnt=/tmp/profile-gpiofs gpid gbase
		"$2" "$gmnt" >"$out/$name.log" 2>&1 &
		gpid=$!
		if wait_for "$gmnt/export" "$gpid" 60 && gbase=$(wait_chip "$gmnt" bench "$gpid" 30); then
			profile_daemon "$out" "$name" "$gpid" "$secs" "$pollers" --class-dir "$gmnt" \
				--input "$gbase" --output $((gbase + 1)) --trigger "$trigger" || rc=1
		else
			echo "# $name: the mount did not come up (log: $out/$name.log)"
			rc=1
		fi
		stop_daemon "$gpid" "$gmnt"
	}
	[[ -z ${GPIOFS_BENCH_BEFORE:-} ]] || profile_gpiofs gpiofs-before "$GPIOFS_BENCH_BEFORE"
	profile_gpiofs gpiofs "$bin/gpiofs"
	gpio_sim_remove bench || true
	echo "profile-vm: complete"
	return $rc
}

if [[ ${1:-} == --guest ]]; then
	guest "$2" "$3" "$4"
	exit
fi

# ------------------------------------------------------------ on the host

OUT=
SECS=10
POLLERS="1 128 1024"
while (($#)); do
	case $1 in
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--seconds) SECS=${2:?--seconds needs a number}; shift 2 ;;
	--pollers) POLLERS=${2:?--pollers needs a list}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "bench: unknown option '$1'" >&2; usage ;;
	esac
done
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive number, not '$SECS'"
[[ $POLLERS =~ ^[0-9\ ]+$ ]] || die "--pollers must be numbers, not '$POLLERS'"
cd "$REPO"
OUT=$(results_dir profile-vm "$OUT")
need_perf
build_bins

NAMES=(floor)
[[ -z ${GPIOFS_BENCH_BEFORE:-} ]] || NAMES+=(gpiofs-before)
NAMES+=(gpiofs)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "results in $OUT; booting the VM (host load $LOAD0)"
rc=0
# tsc=reliable: no clocksource watchdog. Under emulation it may mark the
# TSC unstable, and the kernel's text patching for that (a static key)
# crashed a guest that perf was sampling (an int3 oops in sched_clock_tick).
GPIOFS_VM_APPEND="${GPIOFS_VM_APPEND:-} tsc=reliable" bash tests/vm/run.sh --timeout 2400 --rw "$OUT" -- \
	bash contrib/bench/profile-vm.sh --guest "$OUT" "$SECS" "$POLLERS" 2>&1 | tee "$OUT/output.log" || rc=${PIPESTATUS[0]}
{
	echo "host: $(uname -r), $(nproc) CPUs; gpiofs $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?');" \
		"host load before the VM: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	grep -m1 '^# VM:' "$OUT/output.log" || true
	echo "perf record -e cpu-clock -F ${GPIOFS_PROFILE_FREQ:-499} --call-graph dwarf, $SECS s per profile, on the daemon's pid"
	for name in "${NAMES[@]}"; do
		for p in $POLLERS; do
			[[ -s $OUT/$name-poll$p.data ]] && profile_report "$OUT/$name-poll$p.data" --kallsyms "$OUT/kallsyms"
		done
	done
} >"$OUT/profile.txt"
log "results in $OUT (profile.txt, *.data)"
grep -qx 'profile-vm: complete' "$OUT/output.log" || { log "the VM run did not complete (exit $rc)"; exit 1; }
exit "$rc"
