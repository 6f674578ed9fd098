# Sourced by tests/vm/setup.sh and tests/vm/arm/setup.sh (which define die).
# pack_initramfs DIR INITRD STAMP: packs DIR as a gzipped newc cpio into
# INITRD (atomically), records STAMP beside it, and removes DIR.
pack_initramfs() {
	local dir=$1 initrd=$2 stamp=$3
	(cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$initrd.tmp" ||
		die "cpio/gzip of the initramfs failed"
	rm -rf "$dir"
	mv -f "$initrd.tmp" "$initrd"
	echo "$stamp" >"$initrd.stamp"
}
