# shellcheck shell=bash
# tests/vm/gpio-sim.sh: helpers for simulated GPIO chips (the kernel's
# gpio-sim, Documentation/admin-guide/gpio/gpio-sim.rst). Source it INSIDE
# the test VM (tests/vm/run.sh), from bash:  source tests/vm/gpio-sim.sh
#
# A "sim" is one gpio-sim platform device, /sys/kernel/config/gpio-sim/NAME,
# with one bank (bank0), i.e. one GPIO chip whose label is NAME.
#
#   gpio_sim_create NAME NUM_LINES [LINE_NAME...]
#         create and bring up the sim; line names are given for offsets
#         0, 1, ... ("" leaves one unnamed). Prints the chip name (gpiochipN).
#   gpio_sim_chip NAME      print its chip name, e.g. gpiochip1 (/dev/gpiochip1)
#   gpio_sim_dev NAME       print its platform device name, e.g. gpio-sim.0
#   gpio_sim_base NAME      print the base of its legacy sysfs numbers: the
#                           chip is /sys/class/gpio/gpiochipBASE, line OFFSET
#                           is gpio(BASE+OFFSET) there
#   gpio_sim_pull NAME OFFSET pull-up|pull-down   (also: up|down|1|0)
#                           drive an input line, as a pull on the wire would
#   gpio_sim_get_pull NAME OFFSET   print the current pull (pull-up|pull-down)
#   gpio_sim_value NAME OFFSET      print the line's value seen by the sim (0|1):
#                           what a consumer drives if it is an output, else the pull
#   gpio_sim_remove NAME    tear the sim down (live 0, rmdir lines/bank/device)
#   gpio_sim_remove_all     remove every sim
#
# Every function prints "gpio-sim: ..." on stderr and returns non-zero on
# failure (so `set -e` scripts stop).

GPIO_SIM_CONFIGFS=${GPIO_SIM_CONFIGFS:-/sys/kernel/config/gpio-sim}

_gpio_sim_err() {
	echo "gpio-sim: $*" >&2
	return 1
}

_gpio_sim_check() {
	[[ -d $GPIO_SIM_CONFIGFS ]] ||
		_gpio_sim_err "$GPIO_SIM_CONFIGFS missing: gpio-sim not loaded or configfs not mounted (run inside tests/vm/run.sh)"
}

_gpio_sim_dir() { # NAME -> configfs dir of an existing sim
	_gpio_sim_check || return 1
	[[ -n ${1:-} ]] || _gpio_sim_err "missing sim NAME" || return 1
	[[ -d $GPIO_SIM_CONFIGFS/$1 ]] || _gpio_sim_err "no sim named '$1'" || return 1
	echo "$GPIO_SIM_CONFIGFS/$1"
}

gpio_sim_create() {
	local name=${1:-} n=${2:-} dir i
	_gpio_sim_check || return 1
	[[ -n $name && $name != */* ]] || _gpio_sim_err "usage: gpio_sim_create NAME NUM_LINES [LINE_NAME...]" || return 1
	[[ $n =~ ^[1-9][0-9]*$ ]] || _gpio_sim_err "gpio_sim_create $name: bad NUM_LINES '$n'" || return 1
	shift 2
	(($# <= n)) || _gpio_sim_err "gpio_sim_create $name: $# line names for $n lines" || return 1
	dir=$GPIO_SIM_CONFIGFS/$name
	[[ ! -e $dir ]] || _gpio_sim_err "sim '$name' already exists" || return 1
	mkdir "$dir" "$dir/bank0" || _gpio_sim_err "cannot create $dir/bank0" || return 1
	{
		echo "$n" >"$dir/bank0/num_lines" &&
			echo "$name" >"$dir/bank0/label"
	} || { gpio_sim_remove "$name" 2>/dev/null; _gpio_sim_err "cannot configure $dir/bank0"; return 1; }
	i=0
	for lname in "$@"; do
		if [[ -n $lname ]]; then
			{ mkdir "$dir/bank0/line$i" && echo "$lname" >"$dir/bank0/line$i/name"; } || {
				gpio_sim_remove "$name" 2>/dev/null
				_gpio_sim_err "cannot name line $i of '$name'"
				return 1
			}
		fi
		i=$((i + 1))
	done
	echo 1 >"$dir/live" || {
		gpio_sim_remove "$name" 2>/dev/null
		_gpio_sim_err "cannot bring sim '$name' live"
		return 1
	}
	gpio_sim_chip "$name"
}

gpio_sim_chip() {
	local dir chip
	dir=$(_gpio_sim_dir "${1:-}") || return 1
	chip=$(cat "$dir/bank0/chip_name" 2>/dev/null) || true
	[[ $chip == gpiochip* ]] || _gpio_sim_err "sim '$1' is not live" || return 1
	echo "$chip"
}

gpio_sim_dev() {
	local dir dev
	dir=$(_gpio_sim_dir "${1:-}") || return 1
	dev=$(cat "$dir/dev_name" 2>/dev/null) || true
	[[ $dev == gpio-sim.* ]] || _gpio_sim_err "sim '$1' is not live" || return 1
	echo "$dev"
}

_gpio_sim_sysdir() { # NAME -> /sys/devices/platform/<dev>/<chip>
	local dev chip
	dev=$(gpio_sim_dev "${1:-}") || return 1
	chip=$(gpio_sim_chip "$1") || return 1
	[[ -d /sys/devices/platform/$dev/$chip ]] ||
		_gpio_sim_err "no /sys/devices/platform/$dev/$chip" || return 1
	echo "/sys/devices/platform/$dev/$chip"
}

gpio_sim_base() {
	local dir dev label c real
	dir=$(_gpio_sim_dir "${1:-}") || return 1
	dev=$(gpio_sim_dev "$1") || return 1
	label=$(cat "$dir/bank0/label")
	# 6.12 puts the legacy class device under the platform device
	# (.../gpio-sim.N/gpio/gpiochipBASE), newer kernels under the chip.
	for c in /sys/class/gpio/gpiochip*; do
		[[ -e $c ]] || continue
		real=$(readlink -f "$c")
		if [[ $real == /sys/devices/platform/"$dev"/* && $(cat "$c/label") == "$label" ]]; then
			cat "$c/base"
			return 0
		fi
	done
	_gpio_sim_err "no /sys/class/gpio/gpiochip* for sim '$1' ($dev, label $label)"
}

_gpio_sim_line() { # NAME OFFSET -> sysfs dir of the line
	local sys off=${2:-}
	sys=$(_gpio_sim_sysdir "${1:-}") || return 1
	[[ $off =~ ^[0-9]+$ ]] || _gpio_sim_err "bad line offset '$off'" || return 1
	[[ -d $sys/sim_gpio$off ]] || _gpio_sim_err "sim '$1' has no line $off" || return 1
	echo "$sys/sim_gpio$off"
}

gpio_sim_pull() {
	local line pull
	line=$(_gpio_sim_line "${1:-}" "${2:-}") || return 1
	case ${3:-} in
	pull-up | up | 1 | high) pull='pull-up' ;;
	pull-down | down | 0 | low) pull='pull-down' ;;
	*) _gpio_sim_err "gpio_sim_pull: pull must be pull-up or pull-down, not '${3:-}'"; return 1 ;;
	esac
	echo "$pull" >"$line/pull" || _gpio_sim_err "cannot write $pull to $line/pull"
}

gpio_sim_get_pull() {
	local line
	line=$(_gpio_sim_line "${1:-}" "${2:-}") || return 1
	cat "$line/pull"
}

gpio_sim_value() {
	local line
	line=$(_gpio_sim_line "${1:-}" "${2:-}") || return 1
	cat "$line/value"
}

gpio_sim_remove() {
	local dir d
	dir=$(_gpio_sim_dir "${1:-}") || return 1
	if [[ $(cat "$dir/live" 2>/dev/null) == 1 ]]; then
		echo 0 >"$dir/live" || _gpio_sim_err "cannot take sim '$1' down (a line still requested?)" || return 1
	fi
	for d in "$dir"/*/line*/hog "$dir"/*/line* "$dir"/*/; do
		[[ -d $d ]] || continue
		rmdir "$d" || _gpio_sim_err "cannot rmdir $d" || return 1
	done
	rmdir "$dir" || _gpio_sim_err "cannot rmdir $dir"
}

gpio_sim_remove_all() {
	local d rc=0
	_gpio_sim_check || return 1
	for d in "$GPIO_SIM_CONFIGFS"/*/; do
		[[ -d $d ]] || continue
		d=${d%/}
		gpio_sim_remove "${d##*/}" || rc=1
	done
	return $rc
}
