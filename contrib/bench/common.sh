# shellcheck shell=bash
# contrib/bench/common.sh: what the scripts in contrib/bench share. Sourced.

log() { echo "bench: $*" >&2; }
# usage: prints the running script's comment from "# usage:" up to
# "# Environment:" and exits 2.
usage() {
	sed -n '/^# usage:/,/^# Environment:/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "bench: ERROR: $*" >&2
	exit 1
}

# results_dir KIND DIR: prints DIR made absolute (created); with DIR empty,
# a new target/bench/KIND-<date>-<time>, which target/bench/KIND-latest
# points at. Run from the repository's top.
results_dir() {
	local kind=$1 out=$2
	if [[ -z $out ]]; then
		out=target/bench/$kind-$(date +%Y%m%d-%H%M%S)
		mkdir -p target/bench
		ln -sfn "${out##*/}" "target/bench/$kind-latest"
	fi
	mkdir -p "$out"
	(cd "$out" && pwd -P)
}

# build_bins: gpiofs, gpiofs-bench and fuse_floor, release builds
build_bins() {
	log "cargo build --release --workspace --bins (gpiofs, gpiofs-bench, fuse_floor)"
	cargo build --release --workspace --bins -q || die "cargo build failed"
}

# need_perf: installs Debian's linux-perf if perf is missing
need_perf() {
	if ! command -v perf >/dev/null; then
		log "installing linux-perf"
		apt-get update -qq || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null ||
			die "apt-get install linux-perf failed"
	fi
}

# ------------------------------------------------ daemons and their mounts

# wait_for PATH PID SECONDS: until PATH exists (false if PID died first)
wait_for() {
	local path=$1 pid=$2 limit=$3 i
	for ((i = 0; i < limit * 10; i++)); do
		[[ -e $path ]] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# chip_base MOUNT LABEL: base of the gpiochip* whose label is LABEL
chip_base() {
	local c
	for c in "$1"/gpiochip*; do
		[[ -e $c/label && $(cat "$c/label") == "$2" ]] && { cat "$c/base"; return 0; }
	done
	return 1
}

# wait_chip MOUNT LABEL PID SECONDS: chip_base, once the chip shows up
wait_chip() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		chip_base "$1" "$2" && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_daemon PID MOUNT: SIGTERM, wait, make sure MOUNT is gone
stop_daemon() {
	local pid=$1 mnt=$2 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unmount "$mnt"
}

# unmount DIR: unmounts DIR if it is a mount (also when its daemon died)
unmount() {
	if awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; then
		umount -l "$1" 2>/dev/null || true
	fi
	return 0
}

# ------------------------------------------ perf reports (profile-*.sh)

# perf_section TITLE PERF-REPORT-ARGS...: one `perf report` table, without
# its comments and call graphs
perf_section() {
	echo "--- $1"
	shift
	perf report --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' || true
	echo
}
# profile_report DATA [PERF-REPORT-ARGS...]: samples per thread and per
# object, the top call-graph entries (inclusive) and functions (self)
profile_report() {
	local data=$1
	shift
	echo
	echo "=== ${data##*/}"
	perf_section "samples per thread" -i "$data" --sort comm "$@"
	perf_section "samples per object" -i "$data" --no-children --sort dso "$@"
	perf_section "top call-graph entries, inclusive (>= 1.5%)" -i "$data" --children --sort symbol --percent-limit 1.5 "$@"
	perf_section "top functions, self (>= 0.3%)" -i "$data" --no-children --sort dso,symbol --percent-limit 0.3 "$@"
}

# ------------------------------------------------------------------ rounds

# bench_run BENCH DIR NAME ARGS...: one run of gpiofs-bench BENCH, labelled
# NAME without its round suffix (.rN); results DIR/NAME.json, its tables
# DIR/NAME.txt and on stdout; returns gpiofs-bench's exit status
bench_run() {
	local bench=$1 dir=$2 name=$3 t0=$SECONDS r=0
	shift 3
	echo "# ---- $name: gpiofs-bench $*"
	"$bench" --label "${name%.r*}" --json "$dir/$name.json" "$@" 2>&1 | tee "$dir/$name.txt" || r=${PIPESTATUS[0]}
	echo "# ---- $name took $((SECONDS - t0)) s (exit $r)"
	return "$r"
}

# bench_rounds QUICK: prints how many times each daemon runs:
# GPIOFS_BENCH_ROUNDS (2), or 1 when QUICK is non-empty; dies on junk
bench_rounds() {
	local rounds=${GPIOFS_BENCH_ROUNDS:-2}
	[[ -n $1 ]] && rounds=1
	[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "GPIOFS_BENCH_ROUNDS must be a positive number, not '$rounds'"
	echo "$rounds"
}

# best_of_rounds DIR NAME ROUNDS: merges DIR/NAME.r1.json ... NAME.rROUNDS.json
# (one gpiofs-bench run per round, the daemons alternated within a round)
# into DIR/NAME.json: the most reads/s and writes/s; for each poller count
# the row with the lowest last-wake median, its missed counts replaced by
# the sum over all rounds (a miss in any round shows); the events latency
# of the round with the lowest median; the rest from the last round. Two
# runs of one binary differ by up to 3x in throughput on this machine,
# depending on which CPU the scheduler gives the FUSE workers (one CPU
# for all: the same numbers each run), so every daemon gets the same
# number of tries.
best_of_rounds() {
	/usr/bin/python3 - "$@" <<'PY'
import json, os, sys

d, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = []
for r in range(1, rounds + 1):
    p = os.path.join(d, f"{name}.r{r}.json")
    if os.path.exists(p):
        with open(p) as f:
            runs.append(json.load(f))
if not runs:
    sys.exit(0)
best = dict(runs[-1])
best["rounds"] = len(runs)
for key in ("value_reads_per_s", "value_writes_per_s"):
    vals = [r[key] for r in runs if r.get(key) is not None]
    best[key] = max(vals) if vals else None
rows = {}
for r in runs:
    for row in r.get("latency") or []:
        rows.setdefault(row["pollers"], []).append(row)
latency = []
for pollers, tries in sorted(rows.items()):
    timed = [t for t in tries if (t.get("last_us") or {}).get("median") is not None]
    row = dict(min(timed, key=lambda t: t["last_us"]["median"]) if timed else tries[-1])
    for key in ("missed_edges", "missed_wakes", "late_wakes", "lost_wakes", "extra_wakes", "rearm_errors"):
        row[key] = sum(t.get(key) or 0 for t in tries)
    row["edges_measured"] = sum(t.get("edges_measured") or 0 for t in tries)
    row["edges"] = sum(t.get("edges") or 0 for t in tries)
    latency.append(row)
best["latency"] = latency
events = [r["events_latency"] for r in runs if (r.get("events_latency") or {}).get("latency_us")]
if events:
    best["events_latency"] = min(events, key=lambda e: e["latency_us"]["median"])
with open(os.path.join(d, name + ".json"), "w") as f:
    json.dump(best, f, indent=1)
PY
}
