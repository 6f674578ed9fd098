# shellcheck shell=bash
# contrib/cross/apt-need.sh (sourced): apt_need PKG... installs the Debian
# packages of the list that are not installed yet (needs root for that);
# returns non-zero with a message on stderr when it cannot.
apt_need() {
	local missing=() p
	for p; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) != 0 ]]; then
		echo "missing Debian packages ${missing[*]}: install them, or run this as root" >&2
		return 1
	fi
	echo "apt-get install ${missing[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
