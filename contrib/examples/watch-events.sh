#!/bin/sh
# Print every edge of a line as it happens, from gpiofs's blocking event
# stream: one "SEQNO TIMESTAMP_NS rising|falling VALUE" line per edge.
# A gap in SEQNO means this reader fell more than 1024 events behind.
#   watch-events.sh [CLASS_DIR] GPIO
set -eu
dir=${2:+$1}; dir=${dir:-/sys/class/gpio}
gpio=${2:-$1}
[ -d "$dir/gpio$gpio" ] || echo "$gpio" > "$dir/export"
exec cat "$dir/gpio$gpio/events"
