#!/bin/busybox sh
# /init of the guest's initramfs: mounts the host's root read-only over 9p and
# the host's result directory read-write, then runs /run/out/run.sh from the
# host's root (so the real node, addon and committed object run against the
# guest's kernel) and powers off. Its exit status lands in /run/out/status.
# The host's /tmp stays visible: the checkout under test may live there.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/modules/$m.ko" || echo "init: insmod $m failed"; done < /modules/order

h=/host
mkdir -p $h
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot $h
mount -t proc proc $h/proc
mount -t sysfs sysfs $h/sys
# cgroup programs (the udp hook's first way) attach at the cgroup v2 root
mount -t cgroup2 cgroup2 $h/sys/fs/cgroup || echo "init: no cgroup2"
mount -t devtmpfs devtmpfs $h/dev
mount -t tmpfs tmpfs $h/run
mkdir -p $h/run/out $h/run/tmp
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $h/run/out
ip link set lo up

echo "init: kernel $(uname -r), running /run/out/run.sh"
chroot $h /usr/bin/env TMPDIR=/run/tmp /bin/sh /run/out/run.sh > $h/run/out/guest.log 2>&1
status=$?
echo $status > $h/run/out/status
sync
umount $h/run/out
echo "init: done, status $status"
poweroff -f
