#!/bin/sh
# Blink an output with nothing but echo, as sysfs scripts always have.
#   blink.sh [CLASS_DIR] GPIO [COUNT]
set -eu
dir=/sys/class/gpio
case ${1:-} in /*) dir=$1; shift ;; esac
gpio=$1 count=${2:-10}
[ -d "$dir/gpio$gpio" ] || echo "$gpio" > "$dir/export"
echo low > "$dir/gpio$gpio/direction"
i=0
while [ "$i" -lt "$count" ]; do
    echo 1 > "$dir/gpio$gpio/value"; sleep 0.5
    echo 0 > "$dir/gpio$gpio/value"; sleep 0.5
    i=$((i + 1))
done
