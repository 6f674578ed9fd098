#!/usr/bin/env bash
# contrib/bench/run-vm.sh: the real-kernel benchmark of gpiofs, in ONE
# command. On the host it installs what is needed and builds everything,
# then boots the test VM (tests/vm/run.sh: Linux 6.12, gpio-sim) ONCE and
# measures, in that one boot and on the same gpio-sim line:
#   kernel   the kernel's own /sys/class/gpio
#   floor    a minimal fuser file (fuse_floor, contrib/bench/gpiofs-bench): a constant
#            `value` whose poll is woken by the line's edges (--edges), the
#            least a FUSE file costs for reads, writes and wake-ups
#   floor-gpio  the same, but `value` reads the line and writes an output
#            (fuse_floor --gpio-output): the least a GPIO daemon's `value` costs
#   gpiofs   target/release/gpiofs on the GPIO character device
#   proxy    gpiod-sysfs-proxy 1.0.2 (PyPI), the peer implementation
# with gpiofs-bench (contrib/bench/gpiofs-bench), and writes into the results directory:
#   <name>.json                the best of the rounds (best_of_rounds)
#   <name>.r<N>.json / .txt    each run's results and printed tables
#   <name>.log                 the daemon's log
#   wakeup.svg                 last-wake latency against pollers, all four
#   summary.md                 the tables (with gpiofs's wake-up latency
#                              over the kernel's and the floor's) and the
#                              targets, met or not
#
# usage: contrib/bench/run-vm.sh [--arch ARCH] [--out DIR] [--quick] [--only "kernel gpiofs ..."]
#   --arch ARCH   amd64 (default) or arm64: an emulated arm64 guest (Linux
#                 7.3, tests/vm/arm) running cross-built binaries; there
#                 the default --only is "kernel floor gpiofs" (the proxy's
#                 venv holds amd64 C extensions)
#   --out DIR     results directory [default: target/bench/vm-<date>-<time>
#                 (vm-arm64-... for arm64), and target/bench/vm-latest
#                 (vm-arm64-latest) points at it]
#   --quick       a smoke run of the whole pipeline (numbers mean nothing)
#   --only LIST   run only these of: kernel floor gpiofs proxy
# Environment:
#   GPIOFS_BENCH_EDGES       edges per latency row for 1, 16 and 128 pollers (2000)
#   GPIOFS_BENCH_EDGES_1024  edges for the 1024-poller row (2000)
#   GPIOFS_BENCH_SECS        seconds per throughput measurement (3)
#   GPIOFS_BENCH_ROUNDS      runs of each daemon but the proxy, alternated;
#                            the best of each is reported (2; --quick: 1;
#                            best_of_rounds in common.sh says how)
#   GPIOFS_BENCH_TIMEOUT     limit for the whole VM run in seconds (3600)
#   GPIOFS_BENCH_CACHE       where the venv and the unpacked udev live
#                            [default: ~/.cache/gpiofs-bench]
#   GPIOFS_BENCH_BEFORE      another gpiofs binary (e.g. an older commit's
#                            build), measured as gpiofs-before right after
#                            the floor; the guest sees the host's files but
#                            has a /tmp of its own: put it e.g. under target/
#   GPIOFS_BENCH_BEFORE_LAST=1  measure gpiofs-before after gpiofs instead
#                            (a second run in the other order tells the
#                            boot's drift from a difference)
#   GPIOFS_VM_KERNEL_SERIES  the guest kernel: 6.12 (default) or newest
#                            (tests/vm/run.sh --kernel)
#
# Also: `run-vm.sh --report DIR` prints the summary of the JSONs in DIR
# (used by run-native.sh); `--guest` is the part that runs inside the VM.
#
# Takes about 13 minutes on a 2-core machine (everything in the VM is
# emulated, ~10x slower). Run it on an otherwise idle machine.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROXY_VERSION=1.0.2
CACHE=${GPIOFS_BENCH_CACHE:-$HOME/.cache/gpiofs-bench}
VENV=$CACHE/venv-gpiod-sysfs-proxy-$PROXY_VERSION
UDEV=$CACHE/udev

# shellcheck source=contrib/bench/common.sh
. "$HERE/common.sh"

# ------------------------------------------------------------- the report

# report DIR: markdown tables of DIR/{kernel,floor,gpiofs,proxy}.json (those
# that exist) and the issue's targets, met or not.
report() {
	/usr/bin/python3 - "$1" <<'PY'
import json, os, sys

d = sys.argv[1]
names = ["kernel", "floor", "floor-gpio", "floor-inline", "gpiofs-before", "gpiofs", "proxy"]
titles = {"kernel": "kernel sysfs", "floor": "FUSE floor", "floor-inline": "FUSE floor, inline edges",
          "floor-gpio": "FUSE floor reading and writing lines",
          "gpiofs-before": "gpiofs before",
          "gpiofs": "gpiofs", "proxy": "gpiod-sysfs-proxy"}
R = {}
for n in names:
    p = os.path.join(d, n + ".json")
    if os.path.exists(p):
        with open(p) as f:
            R[n] = json.load(f)
have = [n for n in names if n in R]
if not have:
    sys.exit(f"no results in {d}")


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return f"{v:,.{nd}f}"


def get(r, *path):
    for k in path:
        if r is None:
            return None
        if isinstance(k, int):
            r = r[k] if isinstance(r, list) and k < len(r) else None
        else:
            r = r.get(k) if isinstance(r, dict) else None
    return r


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def rx(r):  # a ratio, with enough digits that rounding never hides a miss
    return f"{r:.2f}x" if abs(r - round(r, 2)) < 1e-9 or r >= 10 else f"{r:.3g}x"


first = R[have[0]]
print(f"kernel {first.get('kernel')}, {first.get('cpus')} CPUs"
      + (", QUICK run (numbers mean nothing)" if first.get("quick") else ""))
tries = ", ".join(f"{titles[n]} {R[n].get('rounds', 1)}" for n in have)
print()
print(f"Runs per daemon, alternated, best of each (throughput: most ops/s; "
      f"latency: the run with the lowest median; missed: summed over all runs): {tries}.")
print()
print("| value throughput (ops/s) | " + " | ".join(titles[n] for n in have) + " |")
print("| --- |" + " ---: |" * len(have))
for key, label in (("value_reads_per_s", "reads/s"), ("value_writes_per_s", "writes/s")):
    print(f"| {label} | " + " | ".join(fmt(R[n].get(key)) for n in have) + " |")
print()

lat = [n for n in have if R[n].get("latency")]
rows = {}
for n in lat:
    for row in R[n]["latency"]:
        rows.setdefault(int(row["pollers"]), {})[n] = row
if rows:
    print("Edge → wake-up latency, µs (median of the LAST poller's wake-up per edge; "
          "first wake-up and p99 in brackets), and missed wake-ups / edges:")
    print()
    # gpiofs's (and gpiofs-before's) last-wake median over the kernel's and
    # over the FUSE floor's
    over = [(g, n) for g in ("gpiofs-before", "gpiofs") for n in ("kernel", "floor", "floor-gpio", "floor-inline")
            if n in lat and g in lat]
    print("| pollers | " + " | ".join(titles[n] for n in lat)
          + "".join(f" | {titles[g]} ÷ {titles[n]}" for g, n in over) + " |")
    print("| ---: |" + " --- |" * len(lat) + " ---: |" * len(over))
    for p in sorted(rows):
        cells = []
        for n in lat:
            row = rows[p].get(n)
            if row is None:
                cells.append("n/a")
                continue
            last, firstw = row.get("last_us"), row.get("first_us")
            missed = int(row.get("missed_wakes") or 0)
            edges = int(row.get("edges_measured") or row.get("edges") or 0)
            if last:
                c = f"**{fmt(last['median'])}** (first {fmt(get(firstw, 'median'))}, p99 {fmt(last['p99'])})"
            elif firstw:
                c = f"n/a (first {fmt(firstw['median'])})"
            else:
                c = "n/a"
            late = int(row.get("late_wakes") or 0)
            c += f"; missed {missed}/{edges}" if missed == 0 else (
                f"; **missed {missed}** wake-ups on {int(row.get('missed_edges') or 0)} of {edges} edges"
                + (f" ({late} late, {missed - late} lost)" if "late_wakes" in row else ""))
            if row.get("error"):
                c += f" ({row['error']})"
            cells.append(c)
        for g, n in over:
            r = ratio(get(rows[p].get(g), "last_us", "median"), get(rows[p].get(n), "last_us", "median"))
            cells.append("n/a" if r is None else rx(r))
        print(f"| {p} | " + " | ".join(cells) + " |")
    print()

ev = [n for n in have if R[n].get("events_latency")]
if ev:
    print("| events stream (gpiofs extension) | " + " | ".join(titles[n] for n in ev) + " |")
    print("| --- |" + " ---: |" * len(ev))
    print("| edge → blocking read, median / p99 µs | " + " | ".join(
        f"{fmt(get(R[n], 'events_latency', 'latency_us', 'median'))} / {fmt(get(R[n], 'events_latency', 'latency_us', 'p99'))}" for n in ev) + " |")
    def rate(n, k):
        per = get(R[n], k, "per_reader") or []
        w = get(R[n], k, "writer_edges") or 0
        got = min((x["events"] for x in per), default=0)
        numbered = max((x.get("numbered", 0) for x in per), default=0)
        lost = sum(x["lost"] for x in per)
        return (f"{fmt(get(R[n], k, 'writer_per_s'))} edges/s; the kernel reported {100.0 * numbered / max(w, 1):.1f}% of them; "
                f"slowest reader got {100.0 * got / max(numbered, 1):.1f}% of those, lost {lost}")
    print("| 4 readers, writer flat out | " + " | ".join(rate(n, "events_rate") for n in ev) + " |")
    print("| 4 readers, paced at 10,000/s | " + " | ".join(rate(n, "events_rate_paced") for n in ev) + " |")
    print()

dm = [n for n in have if R[n].get("daemon")]
if dm:
    print("| daemon | " + " | ".join(titles[n] for n in dm) + " |")
    print("| --- |" + " ---: |" * len(dm))
    def cpu(n, k):
        t, p = get(R[n], "daemon", k + "_ticks"), get(R[n], "daemon", k + "_pct")
        return "n/a" if t is None else f"{fmt(t)} ticks ({p:.2f}% of a core)"
    secs = get(R[dm[0]], "daemon", "idle_seconds")
    print(f"| CPU in {fmt(secs)} s idle, 128 polled value files | " + " | ".join(cpu(n, "cpu_128_polled") for n in dm) + " |")
    print(f"| CPU in {fmt(secs)} s idle, 128 polled + 16 blocked events reads | " + " | ".join(cpu(n, "cpu_128_polled_16_blocked") for n in dm) + " |")
    print("| RSS at start, KiB | " + " | ".join(fmt(get(R[n], "daemon", "rss_kb_start")) for n in dm) + " |")
    print("| RSS with 1024 open value files, KiB | " + " | ".join(fmt(get(R[n], "daemon", "rss_kb_with_files")) for n in dm) + " |")
    print()

# ----------------------------------------------------------------- targets
g = R.get("gpiofs")
if not g:
    sys.exit(0)
print("| target | measured | met? |")
print("| --- | --- | --- |")
def line(target, measured, ok):
    print(f"| {target} | {measured} | {'n/a' if ok is None else ('met' if ok else '**NOT met**')} |")
for key, what in (("value_reads_per_s", "reads/s"), ("value_writes_per_s", "writes/s")):
    for other, want, cmp in (("floor", 0.9, "FUSE floor"), ("proxy", 50.0, "gpiod-sysfs-proxy")):
        r = ratio(g.get(key), get(R.get(other), key))
        line(f"{what} ≥ {want:g}x {cmp}", "n/a" if r is None else f"{rx(r)} ({fmt(g.get(key))} vs {fmt(get(R.get(other), key))})",
             None if r is None else r >= want)
grow = {int(r["pollers"]): r for r in g.get("latency") or []}
krow = {int(r["pollers"]): r for r in get(R.get("kernel"), "latency") or []}
frow = {int(r["pollers"]): r for r in get(R.get("floor"), "latency") or []}
for p, want in ((1, 3), (16, 4), (128, 5)):
    a, b = get(grow.get(p), "last_us", "median"), get(krow.get(p), "last_us", "median")
    f = get(frow.get(p), "last_us", "median")
    r, rf = ratio(a, b), ratio(a, f)
    line(f"last-wake median, {p} poller{'s' if p > 1 else ''} ≤ {want}x kernel",
         ("n/a" if r is None else f"{rx(r)} ({fmt(a, 1)} vs {fmt(b, 1)} µs)")
         + ("" if rf is None else f"; FUSE floor: {rx(rf)} ({fmt(a, 1)} vs {fmt(f, 1)} µs)"), None if r is None else r <= want)
for p in sorted(grow):  # issue 16
    a, f = get(grow[p], "last_us", "median"), get(frow.get(p), "last_us", "median")
    r = ratio(a, f)
    line(f"last-wake median, {p} poller{'s' if p > 1 else ''} ≤ 1.1x FUSE floor",
         "n/a" if r is None else f"{rx(r)} ({fmt(a, 1)} vs {fmt(f, 1)} µs)", None if r is None else r <= 1.1)
for p in sorted(grow):
    row = grow[p]
    m = int(row.get("missed_wakes") or 0)
    e = int(row.get("edges_measured") or row.get("edges") or 0)
    line(f"0 missed wake-ups, {p} poller{'s' if p > 1 else ''} (2000 edges)",
         f"{m} missed, {e} edges" + (f" ({row['error']})" if row.get("error") else "") + ("" if e >= 2000 else " (fewer edges than the target's 2000)"),
         m == 0 and not row.get("error"))
t = get(g, "daemon", "cpu_128_polled_ticks")
line("idle CPU, 128 polled files, 10 s: 0 ticks", "n/a" if t is None else f"{fmt(t)} ticks", None if t is None else t == 0)
pct = get(g, "daemon", "cpu_128_polled_16_blocked_pct")
line("idle CPU with 16 held reads < 0.5% of a core", "n/a" if pct is None else f"{pct:.2f}%", None if pct is None else pct < 0.5)
rss = get(g, "daemon", "rss_kb_with_files")
line("RSS with 1024 open files < 16 MiB", "n/a" if rss is None else f"{rss / 1024:.1f} MiB", None if rss is None else rss < 16 * 1024)
PY
}

if [[ ${1:-} == --report ]]; then
	report "${2:?--report needs a directory}"
	exit
fi

# ---------------------------------------------------------- inside the VM

guest() {
	local out=$1
	[[ ${GPIOFS_VM:-} == 1 ]] || die "--guest runs inside the VM (tests/vm/run.sh)"
	# shellcheck source=tests/vm/gpio-sim.sh disable=SC1091
	source "$REPO/tests/vm/gpio-sim.sh"
	export PYTHONDONTWRITEBYTECODE=1
	# the guest's binaries: target/release, or the cross build's directory
	local bin=$REPO/${GPIOFS_BENCH_BIN_DIR:-target/release}
	local bench=$bin/gpiofs-bench
	local only=" ${GPIOFS_BENCH_ONLY:-kernel floor gpiofs proxy} "
	local edges=${GPIOFS_BENCH_EDGES:-2000} e1024=${GPIOFS_BENCH_EDGES_1024:-2000}
	local secs=${GPIOFS_BENCH_SECS:-3}
	local common=(--throughput-secs "$secs" --phase-timeout 1200
		--edges "$edges" --row-edges "1=$edges,16=$edges,128=$edges,1024=$e1024")
	[[ ${GPIOFS_BENCH_QUICK:-} == 1 ]] && common=(--quick --phase-timeout 300)
	local rounds
	rounds=$(bench_rounds "${GPIOFS_BENCH_QUICK:-}") || return 1
	local rc=0

	echo "# VM: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
	echo "# edges per row: 1/16/128 pollers $edges, 1024 pollers $e1024; throughput ${secs} s"
	gpio_sim_create bench 8 >/dev/null
	local dev chip kbase trigger
	dev=$(gpio_sim_dev bench)
	chip=$(gpio_sim_chip bench)
	kbase=$(gpio_sim_base bench)
	trigger=/sys/devices/platform/$dev/$chip/sim_gpio0/pull
	echo "# gpio-sim 'bench': $chip ($dev), kernel sysfs base $kbase, trigger $trigger"

	run_bench() { bench_run "$bench" "$out" "$@" || rc=1; } # NAME[.rROUND] ARGS...

	run_floor() { # NAME [ARGS...]: fuse_floor on the input line's edges
		local name=$1 fmnt=/tmp/bench-floor fpid
		shift
		mkdir -p "$fmnt"
		# edges of the input line itself (released when the floor exits,
		# before gpiofs requests it)
		"$bin/fuse_floor" "$fmnt" --edges "/dev/$chip:0" "$@" >"$out/$name.log" 2>&1 &
		fpid=$!
		if wait_for "$fmnt/value" "$fpid" 60; then
			run_bench "$name" --value-file "$fmnt/value" --trigger "$trigger" "${common[@]}"
		else
			echo "# $name: the fuse_floor mount did not come up (log: $out/$name.log)"
			rc=1
		fi
		stop_daemon "$fpid" "$fmnt"
	}

	run_gpiofs() { # NAME BINARY: one gpiofs on the character device, as NAME
		local name=$1 gmnt=/tmp/bench-gpiofs gpid gbase
		"$2" "$gmnt" >"$out/$name.log" 2>&1 &
		gpid=$!
		if wait_for "$gmnt/export" "$gpid" 60 && gbase=$(wait_chip "$gmnt" bench "$gpid" 30); then
			run_bench "$name" --class-dir "$gmnt" --input "$gbase" --output $((gbase + 1)) \
				--trigger "$trigger" --daemon-pid "$gpid" "${common[@]}"
		else
			echo "# $name: the mount did not come up (log: $out/$name.log)"
			rc=1
		fi
		stop_daemon "$gpid" "$gmnt"
	}

	local round name
	for ((round = 1; round <= rounds; round++)); do
		echo "# ==== round $round of $rounds"
		if [[ $only == *" kernel "* ]]; then
			run_bench "kernel.r$round" --class-dir /sys/class/gpio --input "$kbase" --output $((kbase + 1)) \
				--trigger "$trigger" "${common[@]}"
		fi
		if [[ $only == *" floor "* ]]; then
			run_floor "floor.r$round"
			# `value` reads and writes lines, as a GPIO daemon's must
			run_floor "floor-gpio.r$round" --gpio-output 1
		fi
		if [[ $only == *" gpiofs "* ]]; then
			if [[ -n ${GPIOFS_BENCH_BEFORE:-} && -z ${GPIOFS_BENCH_BEFORE_LAST:-} ]]; then
				run_gpiofs "gpiofs-before.r$round" "$GPIOFS_BENCH_BEFORE"
			fi
			run_gpiofs "gpiofs.r$round" "$bin/gpiofs"
			if [[ -n ${GPIOFS_BENCH_BEFORE:-} && -n ${GPIOFS_BENCH_BEFORE_LAST:-} ]]; then
				run_gpiofs "gpiofs-before.r$round" "$GPIOFS_BENCH_BEFORE"
			fi
		fi
	done
	for name in kernel floor floor-gpio gpiofs-before gpiofs; do
		best_of_rounds "$out" "$name" "$rounds" || rc=1
	done

	if [[ $only == *" proxy "* ]]; then
		# gpiod-sysfs-proxy watches udev for chips; udevd (from Debian's udev
		# package, unpacked on the host) makes chips created later visible.
		local udevd=$UDEV/systemd-udevd
		if [[ -x $udevd ]]; then
			mkdir -p /run/udev
			"$udevd" --daemon >"$out/udevd.log" 2>&1 || echo "# udevd did not start (see $out/udevd.log)"
		fi
		local pmnt=/tmp/bench-proxy ppid pbase
		mkdir -p "$pmnt"
		"$VENV/bin/python" "$VENV/bin/gpiod-sysfs-proxy" "$pmnt" -f >"$out/proxy.log" 2>&1 &
		ppid=$!
		if wait_for "$pmnt/export" "$ppid" 180 && pbase=$(wait_chip "$pmnt" bench "$ppid" 30); then
			run_bench proxy --class-dir "$pmnt" --input "$pbase" --output $((pbase + 1)) \
				--trigger "$trigger" --daemon-pid "$ppid" "${common[@]}"
		else
			echo "# proxy: gpiod-sysfs-proxy did not come up with the 'bench' chip (log: $out/proxy.log):"
			# shellcheck disable=SC2012 # a listing for a person to read
			ls "$pmnt" 2>&1 | sed 's/^/#   /'
			sed 's/^/#   /' "$out/proxy.log" | tail -30
			rc=1
		fi
		stop_daemon "$ppid" "$pmnt"
		"$UDEV/bin/udevadm" control --exit 2>/dev/null || true
	fi
	gpio_sim_remove bench || true
	echo "bench-vm: complete"
	return $rc
}

if [[ ${1:-} == --guest ]]; then
	guest "${2:?--guest needs the results directory}"
	exit
fi

# ------------------------------------------------------------ on the host

usage() {
	sed -n '/^# usage:/,/^# Also:/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
OUT=
ARCH=amd64
while (($#)); do
	case $1 in
	--arch) ARCH=${2:?--arch needs amd64 or arm64}; shift 2 ;;
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--quick) export GPIOFS_BENCH_QUICK=1; shift ;;
	--only) export GPIOFS_BENCH_ONLY=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "bench: unknown option '$1'" >&2; usage ;;
	esac
done
cd "$REPO"
T0=$SECONDS
bench_rounds "${GPIOFS_BENCH_QUICK:-}" >/dev/null # junk fails here, not in the VM
case $ARCH in
amd64) OUT=$(results_dir vm "$OUT") ;;
arm64)
	OUT=$(results_dir vm-arm64 "$OUT")
	export GPIOFS_VM_ARCH=arm64 GPIOFS_BENCH_ONLY=${GPIOFS_BENCH_ONLY:-kernel floor gpiofs}
	log "contrib/cross/build.sh arm64 (gpiofs, gpiofs-bench, fuse_floor)"
	GPIOFS_BENCH_BIN_DIR=$(contrib/cross/build.sh arm64 --workspace --bins) ||
		die "the arm64 cross build failed"
	export GPIOFS_BENCH_BIN_DIR
	;;
*) die "--arch must be amd64 or arm64, not '$ARCH'" ;;
esac

# Debian packages: pyfuse3 builds against libfuse3 (pkg-config), the venv
# uses the system python (the VM runs /usr/bin/python3: fast to start there).
need=()
for p in libfuse3-dev fuse3 pkg-config python3-dev python3-venv gcc; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
	log "apt-get install ${need[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
		die "cannot install ${need[*]}"
fi

mkdir -p "$CACHE"
if ! "$VENV/bin/python" -c 'import pyfuse3, gpiod, pyudev, trio' 2>/dev/null ||
	[[ ! -x $VENV/bin/gpiod-sysfs-proxy ]]; then
	log "pip install gpiod-sysfs-proxy==$PROXY_VERSION into $VENV"
	rm -rf "$VENV"
	/usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "gpiod-sysfs-proxy==$PROXY_VERSION" || die "pip install gpiod-sysfs-proxy failed"
	"$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null || true
fi
if [[ ! -x $UDEV/bin/udevadm ]]; then
	log "unpacking Debian's udev package into $UDEV"
	rm -rf "$UDEV" "$CACHE/debs"
	mkdir -p "$CACHE/debs"
	(cd "$CACHE/debs" && apt-get download udev 2>&1 | grep -v unsandboxed >&2) || {
		apt-get update -qq && (cd "$CACHE/debs" && apt-get download udev)
	} || die "apt-get download udev failed"
	dpkg-deb -x "$CACHE"/debs/udev_*.deb "$UDEV" || die "dpkg-deb -x udev failed"
fi
# udevadm is systemd-udevd when called by that name (the package's link is
# absolute: /bin/udevadm)
ln -sfn bin/udevadm "$UDEV/systemd-udevd"

build_bins

if pgrep -f qemu-system >/dev/null || awk '{ exit !($1 >= 0.5) }' /proc/loadavg; then
	log "warning: the machine is busy (load $(cut -d' ' -f1 /proc/loadavg)$(pgrep -f qemu-system >/dev/null && echo ', another qemu is running')): numbers will be noisy"
fi
host_state() { echo "$1: load $(cut -d' ' -f1-3 /proc/loadavg), other qemu: $(pgrep -fc qemu-system || true)"; }
{
	echo "host: $(uname -r), $(nproc) CPUs; gpiofs $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
	host_state "before the VM"
} >"$OUT/host.txt"
log "results in $OUT; booting the VM"
rc=0
GPIOFS_BENCH_OUT_HOST=$OUT bash tests/vm/run.sh --timeout "${GPIOFS_BENCH_TIMEOUT:-3600}" --rw "$OUT" -- \
	bash contrib/bench/run-vm.sh --guest "$OUT" 2>&1 | tee "$OUT/output.log" || rc=${PIPESTATUS[0]}

host_state "after the VM" >>"$OUT/host.txt"
plots=()
for n in kernel floor floor-gpio gpiofs-before gpiofs proxy; do [[ -s $OUT/$n.json ]] && plots+=("$OUT/$n.json"); done
if ((${#plots[@]})); then
	target/release/gpiofs-bench --plot "$(IFS=,; echo "${plots[*]}")" --svg "$OUT/wakeup.svg" >/dev/null ||
		log "the plot failed"
fi
if ls "$OUT"/*.json >/dev/null 2>&1; then
	report "$OUT" >"$OUT/summary.md" || log "the summary failed"
	echo
	cat "$OUT/summary.md"
fi
echo
log "took $((SECONDS - T0)) s; results in $OUT (summary.md, wakeup.svg, *.json, *.txt, *.log)"
grep -qx 'bench-vm: complete' "$OUT/output.log" || { log "the VM run did not complete (exit $rc)"; exit 1; }
exit "$rc"
