#!/bin/sh
# openiscsi.initiator lab: make sure the target VM's lab bridge is complete -- br0 exists, every port NIC (by
# MAC) is enslaved and up, br0 is up with the portal addresses.  systemd-networkd normally does all this at boot
# (lab-setup's files), but on a heavily loaded machine it can give up half-way ("netdev could not be created:
# Connection timed out").  lab/labctl pipes this to `sh -s` over SSH after boot (and before a warm snapshot);
# it is not part of the image.  Idempotent.
#   --port MAC (repeatable)  --addr ADDR/PREFIX (repeatable)
set -eu
ports="" addrs=""
while [ $# -gt 0 ]; do
	case "$1" in
	--port) ports="$ports $2" ;;
	--addr) addrs="$addrs $2" ;;
	*) echo "lab-bridge: unknown argument $1" >&2; exit 2 ;;
	esac
	shift 2
done
ip link show dev br0 >/dev/null 2>&1 || ip link add br0 type bridge
ip link set dev br0 type bridge stp_state 0 forward_delay 0
for mac in $ports; do
	dev=""
	i=0
	while [ -z "$dev" ]; do
		for d in /sys/class/net/*; do
			if [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && [ "${d##*/}" != br0 ]; then
				dev=${d##*/}
			fi
		done
		if [ -z "$dev" ]; then
			i=$((i + 1))
			[ "$i" -lt 300 ] || { echo "lab-bridge: no NIC with address $mac" >&2; exit 1; }
			sleep 0.2
		fi
	done
	[ "$(basename "$(readlink -f "/sys/class/net/$dev/master" 2>/dev/null || echo none)")" = br0 ] ||
		ip link set dev "$dev" master br0
	ip link set dev "$dev" up
done
ip link set dev br0 up
for a in $addrs; do
	ip -o addr show dev br0 | grep -q " $a " || ip addr add "$a" dev br0
done
