#!/usr/bin/env bash
# contrib/bench/run-native.sh: the native benchmark of gpiofs, in one
# command, on this machine's kernel with no GPIO hardware: builds
# everything, then measures with gpiofs-bench (contrib/bench/gpiofs-bench)
#   floor    a minimal fuser file (fuse_floor, same crate), the FUSE floor
#            for reads, writes and wake-ups (fuse_floor --trigger: a write to
#            its trigger file is an edge on its value file, notified by an
#            edge thread, as gpiofs's simulator and every GPIO daemon do)
#   floor-inline  the same, notified by the FUSE worker that took the write
#            (fuse_floor --trigger-inline): the least any FUSE file costs
#   gpiofs   target/release/gpiofs --sim bench:8 (the simulator backend; the
#            trigger is its sim/bench/line0/pull file)
# each GPIOFS_BENCH_ROUNDS times, alternated (the best of each is reported),
# then reads and writes of floor and gpiofs once more with daemon and
# client on one CPU, and writes <name>.json (the best), <name>.r<N>.json,
# .txt and .log (each run), <name>-1cpu.*, wakeup.svg and summary.md
# into the results directory. (The kernel's sysfs and gpiod-sysfs-proxy need
# a GPIO chip: contrib/bench/run-vm.sh measures all of them in a VM.)
#
# usage: contrib/bench/run-native.sh [--out DIR] [--quick]
#   --out DIR   results directory [default: target/bench/native-<date>-<time>,
#               and target/bench/native-latest points at it]
#   --quick     a smoke run (numbers mean nothing)
# Environment: GPIOFS_BENCH_EDGES (edges per latency row, 2000 for every
# row), GPIOFS_BENCH_SECS (seconds per throughput measurement, 3),
# GPIOFS_BENCH_BEFORE (another gpiofs binary, e.g. an older commit's build:
# measured as gpiofs-before between the floor and gpiofs, for before/after
# tables from one run), GPIOFS_BENCH_ROUNDS (2: each daemon is measured this
# many times, the daemons alternated, and the best of each is reported; see
# best_of_rounds in common.sh; --quick: 1).
# Needs /dev/fuse and root (or fusermount3). Takes about 3 minutes a round.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=contrib/bench/common.sh
. "$HERE/common.sh"

OUT=
QUICK=
while (($#)); do
	case $1 in
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage ;;
	*) echo "bench: unknown option '$1'" >&2; usage ;;
	esac
done
cd "$REPO"
T0=$SECONDS
OUT=$(results_dir native "$OUT")
[[ -c /dev/fuse ]] || die "no /dev/fuse: FUSE is needed"

build_bins
if awk '{ exit !($1 >= 0.5) }' /proc/loadavg; then
	log "warning: the machine is busy (load $(cut -d' ' -f1 /proc/loadavg)): numbers will be noisy"
fi

BENCH=$REPO/target/release/gpiofs-bench
EDGES=${GPIOFS_BENCH_EDGES:-2000}
SECS=${GPIOFS_BENCH_SECS:-3}
COMMON=(--throughput-secs "$SECS" --phase-timeout 1200 --edges "$EDGES"
	--row-edges "1=$EDGES,16=$EDGES,128=$EDGES,1024=$EDGES")
[[ -n $QUICK ]] && COMMON=(--quick)
ROUNDS=$(bench_rounds "$QUICK")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpiofs-bench.XXXXXX")
PIDS=()
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local p m
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for m in "$WORK"/floor "$WORK"/gpiofs; do unmount "$m"; done
	rm -rf "$WORK"
}
trap cleanup EXIT

rc=0
run_bench() { bench_run "$BENCH" "$OUT" "$@" || rc=1; } # NAME.rROUND ARGS...

echo "host: $(uname -r), $(nproc) CPUs; gpiofs $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'); load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/host.txt"
exec 3>&1 4>&2
exec > >(tee "$OUT/output.log") 2>&1
TEE=$!
echo "# native: kernel $(uname -r), $(nproc) CPUs; edges per row $EDGES; throughput ${SECS} s; $ROUNDS rounds"

run_floor() { # NAME FLAG: one fuse_floor, measured as NAME
	local name=$1 fpid
	mkdir -p "$WORK/floor"
	"$REPO/target/release/fuse_floor" "$WORK/floor" "$2" >"$OUT/$name.log" 2>&1 &
	fpid=$!
	PIDS+=("$fpid")
	if wait_for "$WORK/floor/value" "$fpid" 30; then
		run_bench "$name" --value-file "$WORK/floor/value" --trigger "$WORK/floor/trigger" "${COMMON[@]}"
	else
		echo "# $name: the fuse_floor mount did not come up (log: $OUT/$name.log)"
		rc=1
	fi
	stop_daemon "$fpid" "$WORK/floor"
}

run_gpiofs() { # NAME BINARY: one gpiofs --sim, measured as NAME
	local name=$1 gpid
	"$2" --sim bench:8 "$WORK/gpiofs" >"$OUT/$name.log" 2>&1 &
	gpid=$!
	PIDS+=("$gpid")
	if wait_for "$WORK/gpiofs/gpiochip512/label" "$gpid" 30 &&
		[[ $(cat "$WORK/gpiofs/gpiochip512/label") == bench ]]; then
		run_bench "$name" --class-dir "$WORK/gpiofs" --input 512 --output 513 \
			--trigger "$WORK/gpiofs/sim/bench/line0/pull" --daemon-pid "$gpid" "${COMMON[@]}"
	else
		echo "# $name: the mount did not come up with gpiochip512 (log: $OUT/$name.log)"
		rc=1
	fi
	stop_daemon "$gpid" "$WORK/gpiofs"
}
mkdir -p "$WORK/gpiofs"
for ((round = 1; round <= ROUNDS; round++)); do
	echo "# ==== round $round of $ROUNDS"
	run_floor "floor.r$round" --trigger
	run_floor "floor-inline.r$round" --trigger-inline
	if [[ -n ${GPIOFS_BENCH_BEFORE:-} ]]; then
		run_gpiofs "gpiofs-before.r$round" "$GPIOFS_BENCH_BEFORE"
	fi
	run_gpiofs "gpiofs.r$round" "$REPO/target/release/gpiofs"
done
for n in floor floor-inline gpiofs-before gpiofs; do
	best_of_rounds "$OUT" "$n" "$ROUNDS" || rc=1
done

# Reads and writes again with the daemon and the client on one CPU: no
# cross-CPU wake-ups, whose cost depends on where the scheduler puts the
# FUSE workers, so what is left is the daemon's own cost per request.
run_one_cpu() { # NAME MOUNT READY VALUE-FILE DAEMON...: READY shows the mount is up
	local name=$1 mnt=$2 ready=$3 file=$4 pid
	shift 4
	taskset -c 0 "$@" >"$OUT/$name-1cpu.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	if wait_for "$mnt/$ready" "$pid" 30; then
		if [[ $mnt == "$WORK/gpiofs" ]]; then
			echo 513 >"$mnt/export" && echo out >"$mnt/gpio513/direction" || rc=1
		fi
		echo "# ---- $name on CPU 0: $file"
		taskset -c 0 "$BENCH" --value-file "$mnt/$file" --throughput-secs "$SECS" --label "$name" \
			--json "$OUT/$name-1cpu.json" 2>&1 | tee "$OUT/$name-1cpu.txt" || rc=1
	else
		echo "# $name: the mount did not come up (log: $OUT/$name-1cpu.log)"
		rc=1
	fi
	stop_daemon "$pid" "$mnt"
}
if [[ -z $QUICK ]]; then
	run_one_cpu floor "$WORK/floor" value value "$REPO/target/release/fuse_floor" "$WORK/floor" --trigger
	if [[ -n ${GPIOFS_BENCH_BEFORE:-} ]]; then
		run_one_cpu gpiofs-before "$WORK/gpiofs" export gpio513/value "$GPIOFS_BENCH_BEFORE" --sim bench:8 "$WORK/gpiofs"
	fi
	run_one_cpu gpiofs "$WORK/gpiofs" export gpio513/value "$REPO/target/release/gpiofs" --sim bench:8 "$WORK/gpiofs"
fi
exec 1>&3 2>&4
wait "$TEE" 2>/dev/null || true

# one_cpu_table DIR: the one-CPU reads and writes as a markdown table
one_cpu_table() {
	/usr/bin/python3 - "$1" <<'PY'
import json, os, sys

d = sys.argv[1]
names = [n for n in ("floor", "gpiofs-before", "gpiofs") if os.path.exists(os.path.join(d, f"{n}-1cpu.json"))]
if "floor" not in names:
    sys.exit(0)
R = {n: json.load(open(os.path.join(d, f"{n}-1cpu.json"))) for n in names}
gs = [n for n in names if n != "floor"]
print()
print("Daemon and client on one CPU (taskset -c 0), one run each:")
print()
print("| value throughput (ops/s) | " + " | ".join(names) + "".join(f" | {g} ÷ floor" for g in gs) + " |")
print("| --- |" + " ---: |" * (len(names) + len(gs)))
for key, label in (("value_reads_per_s", "reads/s"), ("value_writes_per_s", "writes/s")):
    v = {n: R[n].get(key) for n in names}
    cells = [f"{v[n]:,.0f}" if v[n] else "n/a" for n in names]
    cells += [f"{v[g] / v['floor']:.2f}x" if v[g] and v["floor"] else "n/a" for g in gs]
    print(f"| {label} | " + " | ".join(cells) + " |")
PY
}

plots=()
for n in floor floor-inline gpiofs-before gpiofs; do [[ -s $OUT/$n.json ]] && plots+=("$OUT/$n.json"); done
if ((${#plots[@]})); then
	"$BENCH" --plot "$(IFS=,; echo "${plots[*]}")" --svg "$OUT/wakeup.svg" >/dev/null || log "the plot failed"
fi
if ls "$OUT"/*.json >/dev/null 2>&1; then
	bash "$HERE/run-vm.sh" --report "$OUT" >"$OUT/summary.md" || log "the summary failed"
	one_cpu_table "$OUT" >>"$OUT/summary.md" || log "the one-CPU table failed"
	echo
	cat "$OUT/summary.md"
fi
echo
log "took $((SECONDS - T0)) s; results in $OUT (summary.md, wakeup.svg, *.json, *.txt, *.log)"
exit "$rc"
