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
