#!/bin/busybox sh
# /init of the guest's initramfs: mounts the host's root read-only over 9p and
# the host's result directory read-write, then runs /tmp/out/run.sh from the
# host's root (so the real node, addon and committed object run against the
# guest's kernel) and powers off. Its exit status lands in /tmp/out/status.
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
mount -t tmpfs tmpfs $h/tmp
mount -t tmpfs tmpfs $h/run
mkdir -p $h/tmp/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $h/tmp/out
ip link set lo up

echo "init: kernel $(uname -r), running /tmp/out/run.sh"
chroot $h /bin/sh /tmp/out/run.sh > $h/tmp/out/guest.log 2>&1
status=$?
echo $status > $h/tmp/out/status
sync
umount $h/tmp/out
echo "init: done, status $status"
poweroff -f
