#!/usr/bin/env bash
# tests/vm/bench-smoke.sh: keeps the VM benchmark from rotting. A --quick
# run of contrib/bench/run-vm.sh (the kernel's sysfs, the floor, the floor
# that reads and writes lines, gpiofs and gpiod-sysfs-proxy, in one boot
# of the test VM) must exit 0 and write, for each of them, results with
# reads and writes measured and every poller woken by every edge (but the
# proxy's: it misses wake-ups, see BENCHMARKS.md). Its numbers mean
# nothing. Prints a line per check (tests/vm/check.sh), then
# "bench-vm: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/vm/check.sh
source tests/vm/check.sh

out=target/bench-vm-smoke
rm -rf "$out"

contrib/bench/run-vm.sh --quick --out "$out"
rc=$?
check "run-vm.sh --quick exits 0 (it exited $rc)" test "$rc" -eq 0
check "the summary is written" test -s "$out/summary.md"

# complete NAME [MISSES-OK]: NAME.json has reads, writes, and latency rows
# in which every edge woke every poller (unless MISSES-OK)
complete() {
	/usr/bin/python3 - "$out/$1.json" "${2:-}" <<'PY'
import json, sys

try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    sys.exit(f"{sys.argv[1]}: {e}")
rows = r.get("latency") or []
misses_ok = sys.argv[2] == "misses-ok"
bad = [row["pollers"] for row in rows if not row.get("edges_measured")
       or (not misses_ok and (row.get("missed_edges") or row.get("lost_wakes")))]
ok = (r.get("value_reads_per_s") or 0) > 0 and (r.get("value_writes_per_s") or 0) > 0 and rows and not bad
if not ok:
    print(f"# {sys.argv[1]}: reads {r.get('value_reads_per_s')}, writes "
          f"{r.get('value_writes_per_s')}, {len(rows)} latency rows, missing wake-ups at {bad}")
sys.exit(0 if ok else 1)
PY
}
for name in kernel floor floor-gpio gpiofs; do
	check "$name: reads, writes and every wake-up measured" complete "$name"
done
check "proxy: reads, writes and wake-ups measured" complete proxy misses-ok
check "the summary has a column for the floor that reads lines" \
	grep -q "FUSE floor reading and writing lines" "$out/summary.md"

checks_summary bench-vm
