#!/bin/sh
# openiscsi.initiator lab: give a booted -- or restored from the lab's warm snapshot -- initiator VM its own
# identity.  lab/labctl pipes it to `sh -s` over SSH (it is not part of the image); idempotent.  What it writes
# persists across reboots of the VM (the networkd file sets the lab MAC and address at boot).
#   --name NAME  --iqn IQN  --mac MAC (lab NIC)  --addr ADDR/PREFIX (repeatable)  --time EPOCH
#   --generic-mac MAC: the lab NIC's hardware (QEMU) address, the same on every initiator VM
set -eu
name="" iqn="" mac="" addrs="" now="" generic=""
while [ $# -gt 0 ]; do
	case "$1" in
	--name) name=$2 ;;
	--iqn) iqn=$2 ;;
	--mac) mac=$2 ;;
	--addr) addrs="$addrs $2" ;;
	--time) now=$2 ;;
	--generic-mac) generic=$2 ;;
	*) echo "lab-identity: unknown argument $1" >&2; exit 2 ;;
	esac
	shift 2
done

# A restored VM wakes up with the clock of the snapshot.
[ -z "$now" ] || date -s "@$now" >/dev/null

if [ -n "$name" ]; then
	echo "$name" >/etc/hostname
	echo "$name" >/proc/sys/kernel/hostname
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" >/etc/hosts
fi

if [ -n "$iqn" ]; then
	f=/etc/iscsi/initiatorname.iscsi
	if grep -q '^InitiatorName=' "$f" 2>/dev/null; then
		sed -i "s|^InitiatorName=.*|InitiatorName=$iqn|" "$f"
	else
		echo "InitiatorName=$iqn" >>"$f"
	fi
	chmod 0600 "$f"
	# iscsid reads the name when it starts: a daemon started during boot must forget the shared one.
	systemctl try-restart iscsid.service
fi

if [ -n "$mac" ]; then
	dev=""
	for d in /sys/class/net/*; do
		a=$(cat "$d/address" 2>/dev/null || true)
		if [ "$a" = "$generic" ] || [ "$a" = "$mac" ]; then
			dev=${d##*/}
			break
		fi
	done
	[ -n "$dev" ] || { echo "lab-identity: no NIC with address $generic or $mac" >&2; exit 1; }
	mkdir -p /etc/systemd/network
	{
		printf '[Match]\nPermanentMACAddress=%s\n\n[Link]\nMACAddress=%s\n\n[Network]\n' "$generic" "$mac"
		for a in $addrs; do printf 'Address=%s\n' "$a"; done
		printf 'LinkLocalAddressing=no\nIPv6AcceptRA=no\n'
	} >/etc/systemd/network/20-lab-nic.network.tmp
	mv /etc/systemd/network/20-lab-nic.network.tmp /etc/systemd/network/20-lab-nic.network
	# Now, without networkd (it left this NIC unmanaged at boot; the file above is for the next boot).
	if [ "$(cat "/sys/class/net/$dev/address")" != "$mac" ]; then
		ip link set dev "$dev" down
		ip link set dev "$dev" address "$mac"
	fi
	ip link set dev "$dev" up
	for a in $addrs; do
		ip -o addr show dev "$dev" | grep -q " $a " || ip addr add "$a" dev "$dev"
	done
fi
