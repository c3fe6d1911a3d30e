#!/usr/bin/env bash
# A real Xen guest whose initramfs lacks virtio (Debian 12, initramfs-tools MODULES=list with xen-blkfront and
# ext4 only) stops waiting for its root disk on KVM even with every other fixup applied (the control: convert
# --fixup --no-initramfs), and boots on virtio-blk after `vdkit convert --fixup`, which appends the guest's own
# virtio modules, a rebuilt module index and /conf/modules to that initramfs.
#
# Measured on the 2-core Debian 12 dev machine, TCG, shared with six other builds (boot times vary with the load):
#   warm, cached tree: 284 s in the lightest-loaded full run (make-xen-guest with the MODULES=list rebuild 35 s,
#   conversions 4 s each, control boot 87 s: the initramfs gives up after its 30 s rootdelay, then panic=5; fixed
#   boot 106 s: marker printed, both fstab mounts present), 494-534 s under the heaviest load (control 162 s, fixed
#   247-275 s). On a quiet machine the boots take about a third of that (the first test's 47-66 s).
#   cold, no cached tree: add build-rootfs (about 4 min, see test_xen_guest_boot.sh).
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
T0=$SECONDS
LOGS=$VDKIT_BUILD/tests/realguest-logs/initramfs
mkdir -p "$LOGS"

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts, chroot)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }
for t in debootstrap extlinux qemu-system-x86_64 qemu-img zstd sfdisk mkfs.ext4 cpio debugfs; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/setup installs it)"
done
if ! "$RG/build-rootfs" --check >/dev/null; then
  mirror=$(source "$RG/lib.sh"; rg_mirror)
  timeout 30 python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' \
    "$mirror/dists/bookworm/Release" >/dev/null 2>&1 || skip "no cached Debian tree and $mirror is unreachable"
fi
"$RG/build-rootfs" >/dev/null || { fail "build-rootfs"; finish; }

t=$SECONDS
src=$SCRATCH/xen-guest.vmdk
check "make-xen-guest: Xen layout, initramfs with xen-blkfront and no virtio" \
  "$RG/make-xen-guest" --initramfs-modules "xen-blkfront ext4 crc32c_generic" "$src"
T_MAKE=$((SECONDS - t))
[ -s "$src" ] || finish
sum=$(sum_of "$src")

# boot IMAGE NAME: runs boot-check; sets STATE and BOOT_SECONDS. A boot that dies in the kernel's IO-APIC timer
# check (TCG on a loaded host runs the timer too slowly for it) says nothing about the guest: it is booted once more.
boot() {
  local rc try
  for try in 1 2; do
    rc=0
    "$RG/boot-check" --timeout 400 --log "$LOGS/$2.serial" "$1" >"$SCRATCH/$2.out" || rc=$?
    grep -aq 'IO-APIC + timer doesn.t work' "$LOGS/$2.serial" || break
    echo "$2: the kernel's IO-APIC timer check failed under TCG (host load); booting again"
  done
  cat "$SCRATCH/$2.out"
  STATE=NONE BOOT_SECONDS=0
  read -r STATE BOOT_SECONDS _ < <(tail -n1 "$SCRATCH/$2.out") || true
  [ $rc -le 2 ] || fail "$2: boot-check could not run qemu (exit $rc)"
}

# The initramfs of partition 1 of a qcow2 image, into FILE (debugfs reads the ext4 as it is).
initrd_of() {
  local img=$1 out=$2 raw=$SCRATCH/initrd-src.raw start size kver
  qemu-img convert -O raw "$img" "$raw"
  read -r start size < <(sfdisk -d "$raw" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p' | head -n1)
  dd if="$raw" of="$raw.p1" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) \
    status=none
  kver=$(debugfs -R "ls -p /usr/lib/modules" "$raw.p1" 2>/dev/null | awk -F/ '$6 ~ /^[0-9]/ {print $6}' | head -n1)
  debugfs -R "dump /boot/initrd.img-$kver $out" "$raw.p1" >/dev/null 2>&1
  rm -f "$raw" "$raw.p1"
}

# Control: every fixup but the initramfs one. Root is named by UUID and the console is ttyS0, so the initramfs's
# own complaint reaches the serial line.
t=$SECONDS
"$VDKIT" convert --fixup --no-initramfs -O qcow2 "$src" "$SCRATCH/control.qcow2" >"$LOGS/convert-control.out" 2>&1 ||
  fail "vdkit convert --fixup --no-initramfs"
check "control: --no-initramfs left the initramfs alone" \
  grep -q 'virtio-missing-from-initrd' "$LOGS/convert-control.out"
boot "$SCRATCH/control.qcow2" control
T_CONTROL=$BOOT_SECONDS
check "control (virtio-less initramfs) does not boot: $STATE" [ "$STATE" = GAVE-UP ]
check "control: the initramfs gave up waiting for its root device" \
  grep -aq 'Gave up waiting for root' "$LOGS/control.serial"

t=$SECONDS
dst=$SCRATCH/kvm-guest.qcow2
if "$VDKIT" convert --fixup -O qcow2 "$src" "$dst" >"$LOGS/convert.out" 2>&1; then
  pass "vdkit convert --fixup -O qcow2 ($((SECONDS - t)) s)"
else
  cat "$LOGS/convert.out" >&2
  fail "vdkit convert --fixup"
  finish
fi
T_CONVERT=$((SECONDS - t))
check "source unchanged by the conversions" [ "$(sum_of "$src")" = "$sum" ]
check "convert reports the drivers it added" grep -q 'virtio-added-to-initrd' "$LOGS/convert.out"

# The initramfs before and after: the old bytes unchanged in front, then one newc segment on a 4-byte boundary.
initrd_of "$SCRATCH/control.qcow2" "$SCRATCH/initrd.old"
initrd_of "$dst" "$SCRATCH/initrd.new"
old_size=$(stat -c %s "$SCRATCH/initrd.old")
new_size=$(stat -c %s "$SCRATCH/initrd.new")
seg_at=$(((old_size + 3) / 4 * 4))
check "the new initramfs starts with the old one, byte for byte" \
  cmp -n "$old_size" "$SCRATCH/initrd.old" "$SCRATCH/initrd.new"
tail -c +$((seg_at + 1)) "$SCRATCH/initrd.new" >"$SCRATCH/segment.cpio"
cpio -t --quiet <"$SCRATCH/segment.cpio" >"$LOGS/segment.list" 2>&1
check "cpio -t reads the appended segment ($((new_size - seg_at)) bytes)" [ -s "$LOGS/segment.list" ]
for f in kernel/drivers/block/virtio_blk.ko kernel/drivers/virtio/virtio_pci.ko kernel/drivers/virtio/virtio_ring.ko \
  modules.dep modules.dep.bin modules.alias.bin; do
  check "segment holds usr/lib/modules/*/$f" grep -q "^usr/lib/modules/[^/]*/$f\$" "$LOGS/segment.list"
done
check "segment holds conf/modules" grep -qx 'conf/modules' "$LOGS/segment.list"
check "segment has no entry for lib, usr or usr/lib (the merged-/usr links stay)" \
  bash -c "! grep -qxE 'lib|usr|usr/lib|lib/.*' '$LOGS/segment.list'"
# lsinitramfs is the peer for the archives update-initramfs wrote (it stops at data after a compressed archive).
if command -v lsinitramfs >/dev/null; then
  head -c "$old_size" "$SCRATCH/initrd.new" >"$SCRATCH/initrd.front"
  check "lsinitramfs lists the old part: xen-blkfront, no virtio_blk" \
    bash -c "lsinitramfs '$SCRATCH/initrd.front' | grep -q xen-blkfront.ko && \
      ! lsinitramfs '$SCRATCH/initrd.front' | grep -q virtio_blk.ko"
fi
# A second run finds the drivers and changes nothing in the initramfs.
"$VDKIT" fixup --dry-run "$dst" >"$LOGS/rerun.out" 2>&1 || true
check "a second fixup finds the drivers: no initramfs change, no missing-virtio warning" \
  bash -c "! grep -qE 'virtio-added-to-initrd|virtio-missing-from-initrd|^\\+\\+\\+ /boot/initrd' '$LOGS/rerun.out'"

boot "$dst" fixed
T_FIXED=$BOOT_SECONDS
out=$SCRATCH/fixed.out
check "fixed guest boots on virtio-blk: $STATE" [ "$STATE" = BOOTED ]
check "fixed guest: root on /dev/vda1" grep -q '^VDKIT-MOUNT / /dev/vda1 mounted$' "$out"
check "fixed guest: virtio_blk loaded from the initramfs" grep -aq 'virtio_blk virtio' "$LOGS/fixed.serial"

echo "timings: make guest $T_MAKE s, control boot $T_CONTROL s, convert $T_CONVERT s, fixed boot $T_FIXED s," \
  "total $((SECONDS - T0)) s"
finish
