#!/bin/sh
# Runs inside the image chroot after all packages are installed (lab/labctl build). Keep it idempotent.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# Units that only slow a TCG boot down, or must not run on every VM.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	man-db.timer dpkg-db-backup.timer tgt.service systemd-timesyncd.service; do
	systemctl disable "$u" >/dev/null 2>&1 || true
done
# No VGA console (only the serial one, kept for debugging); no binfmt, hugepages, debugfs, pstore, utmp.
systemctl disable getty@tty1.service >/dev/null 2>&1 || true
for u in getty-static.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount dev-hugepages.mount \
	dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount systemd-pstore.service \
	systemd-update-utmp.service systemd-update-utmp-runlevel.service; do
	systemctl mask "$u" >/dev/null 2>&1 || true
done
systemctl set-default multi-user.target >/dev/null
systemctl enable systemd-networkd.service lab-setup.service ssh.service >/dev/null
systemctl enable iscsid.socket open-iscsi.service >/dev/null 2>&1 || true
# multipath-tools is in the image, its daemon off (socket included: `multipathd show` must not start it): a host
# where multipath is not configured yet, as the role and the multipath module find one; tests start it.
systemctl disable multipathd.service multipathd.socket >/dev/null 2>&1 || true

# The VMs boot the kernel and initrd extracted from this image: rebuilding the initramfs inside a guest
# (a package trigger) changes nothing but costs minutes under TCG.
if [ -f /etc/initramfs-tools/update-initramfs.conf ]; then
	sed -i 's/^update_initramfs=.*/update_initramfs=no/' /etc/initramfs-tools/update-initramfs.conf
fi

# Root logs in with the lab key; no password at all.
passwd -l root >/dev/null
mkdir -p /root/.ssh
chmod 700 /root/.ssh

# Identity comes from the kernel command line (lab-setup); a machine id per VM via systemd.machine_id=.
rm -f /etc/hostname
echo localhost >/etc/hostname

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*

# Mark /etc and /var up to date with /usr, or every VM's first boot runs ldconfig, the hwdb and catalog
# updates (ConditionNeedsUpdate) -- tens of seconds under TCG.
systemd-hwdb update >/dev/null 2>&1 || true
touch -r /usr /etc/.updated /var/.updated 2>/dev/null || touch /etc/.updated /var/.updated
