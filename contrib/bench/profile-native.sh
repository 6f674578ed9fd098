#!/usr/bin/env bash
# contrib/bench/profile-native.sh: where the daemon's CPU goes, gpiofs next
# to the FUSE floor, on this machine's kernel (no GPIO hardware: gpiofs runs
# --sim). For each of floor and gpiofs, `perf record` (cpu-clock, DWARF call
# graphs) samples the daemon
#   poll1, poll128, poll1024   while gpiofs-bench makes edges back to back
#                              for 1, 128 and 1024 pollers
#   reads                      while gpiofs-bench preads one value file
# and writes <name>-<workload>.data (open with `perf report -i`) and
# profile.txt: samples per thread, then the top call-graph entries
# (inclusive) and the top functions (self) of each profile.
#
# usage: contrib/bench/profile-native.sh [--out DIR] [--seconds N]
#   --out DIR     results directory [default: target/bench/profile-<date>-<time>]
#   --seconds N   seconds sampled per profile [default: 8]
# Environment: GPIOFS_BENCH_BEFORE (another gpiofs binary, e.g. an older
# commit's build: profiled as gpiofs-before, after the floor).
# Needs /dev/fuse, root and perf (installs Debian's linux-perf if missing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=contrib/bench/common.sh
. "$HERE/common.sh"

OUT=
SECS=8
while (($#)); do
	case $1 in
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--seconds) SECS=${2:?--seconds needs a number}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "bench: unknown option '$1'" >&2; usage ;;
	esac
done
cd "$REPO"
OUT=$(results_dir profile "$OUT")
[[ -c /dev/fuse ]] || die "no /dev/fuse: FUSE is needed"
need_perf
build_bins

BENCH=$REPO/target/release/gpiofs-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpiofs-profile.XXXXXX")
DAEMON=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	[[ -n $DAEMON ]] && kill -TERM "$DAEMON" 2>/dev/null
	sleep 0.5
	for m in "$WORK"/*; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

start() { # NAME CMD...: starts a daemon (pid in DAEMON), waits for its mount
	local name=$1 i
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	DAEMON=$!
	for ((i = 0; i < 100; i++)); do
		[[ -e $WORK/$name/value || -e $WORK/$name/gpiochip512 ]] && return 0
		sleep 0.1
	done
	die "$name did not come up (log: $OUT/$name.log)"
}
stop() { # NAME
	kill -TERM "$DAEMON" 2>/dev/null || true
	wait "$DAEMON" 2>/dev/null || true
	DAEMON=
	umount -l "$WORK/$1" 2>/dev/null || true
}
profile() { # NAME WORKLOAD BENCH-ARGS...: samples the daemon while the bench runs
	local name=$1 load=$2 bench
	shift 2
	"$BENCH" --label "$name" "$@" >"$OUT/$name-$load.txt" 2>&1 &
	bench=$!
	sleep 2
	perf record -q -o "$OUT/$name-$load.data" -e cpu-clock -F 999 --call-graph dwarf,8192 \
		-p "$DAEMON" -- sleep "$SECS" >/dev/null 2>&1 || die "perf record failed"
	# The edges never end (stop them); the reads end by themselves and
	# print their rate.
	[[ $load == reads ]] || kill -INT "$bench" 2>/dev/null || true
	wait "$bench" 2>/dev/null || true
}
edges() { echo --pollers "$1" --edges 1000000 --row-edges "$1=1000000" --throughput-secs 0.3; }
# reads for SECS + 3 seconds (3 windows), so that they span the sampling
READS=(--throughput-secs $((SECS + 3)))

mkdir -p "$WORK/floor"
start floor "$REPO/target/release/fuse_floor" "$WORK/floor" --trigger
for p in 1 128 1024; do
	# shellcheck disable=SC2046 # edges prints words
	profile floor "poll$p" --value-file "$WORK/floor/value" --trigger "$WORK/floor/trigger" $(edges "$p")
done
profile floor reads --value-file "$WORK/floor/value" "${READS[@]}"
stop floor

profile_gpiofs() { # NAME BINARY
	local name=$1 p
	mkdir -p "$WORK/$name"
	start "$name" "$2" --sim bench:8 "$WORK/$name"
	for p in 1 128 1024; do
		# shellcheck disable=SC2046 # edges prints words
		profile "$name" "poll$p" --class-dir "$WORK/$name" --input 512 --output 513 \
			--trigger "$WORK/$name/sim/bench/line0/pull" $(edges "$p")
	done
	echo 512 >"$WORK/$name/export"
	profile "$name" reads --value-file "$WORK/$name/gpio512/value" "${READS[@]}"
	stop "$name"
}
NAMES=(floor)
if [[ -n ${GPIOFS_BENCH_BEFORE:-} ]]; then
	profile_gpiofs gpiofs-before "$GPIOFS_BENCH_BEFORE"
	NAMES+=(gpiofs-before)
fi
profile_gpiofs gpiofs "$REPO/target/release/gpiofs"
NAMES+=(gpiofs)

{
	echo "host: $(uname -r), $(nproc) CPUs; gpiofs $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "perf record -e cpu-clock -F 999 --call-graph dwarf, $SECS s per profile, on the daemon's pid"
	for name in "${NAMES[@]}"; do
		for load in poll1 poll128 poll1024 reads; do
			profile_report "$OUT/$name-$load.data"
		done
	done
} >"$OUT/profile.txt"
log "results in $OUT (profile.txt, *.data)"
