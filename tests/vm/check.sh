# shellcheck shell=bash
# tests/vm/check.sh: the checks of a shell test, in the form
# tests/vm/run-suite.sh counts ("ok - ..." / "FAIL - ..."). Sourced.
#
#   check DESCRIPTION COMMAND...   runs COMMAND; ok when it succeeds
#   checks_summary NAME            prints "NAME: P passed, F failed";
#                                  false if any failed

passed=0
failed=0
check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok - $what"
		passed=$((passed + 1))
	else
		echo "FAIL - $what"
		failed=$((failed + 1))
	fi
}
checks_summary() {
	echo "$1: $passed passed, $failed failed"
	((failed == 0))
}
