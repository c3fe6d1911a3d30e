#!/usr/bin/env bash
# The initramfs fixup on a real dracut 059 image: a Debian 12 tree with dracut in place of initramfs-tools and an
# image dracut made with the Xen drivers only (build-dracut-tree, cached). `vdkit fixup --in-place` on the tree as a
# folder must append one segment with the guest's virtio modules, a module index from depmod, and
# /etc/cmdline.d's rd.driver.pre=; set /etc/dracut.conf.d to keep them; and change nothing on a second run. Booted
# only with VDKIT_REALGUEST_DRACUT_BOOT=1 (below); the boot check in the suite is test_xen_guest_initramfs.sh.
#
# Measured on the 2-core dev machine, shared with six other builds: cold about 4 min (apt-get install dracut and one
# dracut run in a chroot), warm 30-60 s (unpacking the cached tree; the fixup itself 1-2 s).
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
LOGS=$VDKIT_BUILD/tests/realguest-logs/dracut
mkdir -p "$LOGS"

[ "$(id -u)" -eq 0 ] || skip "needs root (chroot, the tree's owners)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }
for t in debootstrap zstd cpio depmod; do command -v "$t" >/dev/null || skip "$t is not installed (scripts/setup)"; done
if ! "$RG/build-dracut-tree" --check >/dev/null; then
  mirror=$(source "$RG/lib.sh"; rg_mirror)
  timeout 30 python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' \
    "$mirror/dists/bookworm/Release" >/dev/null 2>&1 || skip "no cached dracut tree and $mirror is unreachable"
fi
tarball=$("$RG/build-dracut-tree") || { fail "build-dracut-tree"; finish; }
tree=$SCRATCH/tree
mkdir -p "$tree"
tar --zstd --numeric-owner -C "$tree" -xpf "$tarball"
kver=$(ls "$tree/usr/lib/modules" | sort -V | tail -n1)
img=$tree/boot/initrd.img-$kver
cp "$img" "$SCRATCH/initrd.old"
check "dracut wrote lib/dracut/dracut-059 into its image" \
  bash -c "chroot '$tree' lsinitrd '/boot/initrd.img-$kver' | grep -q 'lib/dracut/dracut-0'"

"$VDKIT" fixup --dry-run "$tree" >"$LOGS/dry-run.out" 2>&1 || fail "vdkit fixup --dry-run"
check "dry run: flavour dracut, modules listed" grep -q 'initramfs flavour: dracut$' "$LOGS/dry-run.out"
check "dry run: etc/cmdline.d/90-vdkit-virtio.conf in the segment" \
  grep -q '+ etc/cmdline.d/90-vdkit-virtio.conf' "$LOGS/dry-run.out"
check "dry run changed nothing" cmp -s "$img" "$SCRATCH/initrd.old"

"$VDKIT" fixup --in-place --backup "$tree" >"$LOGS/fixup.out" 2>&1 || fail "vdkit fixup --in-place"
old_size=$(stat -c %s "$SCRATCH/initrd.old")
check "the old image is kept as .vdkit-orig" cmp -s "$img.vdkit-orig" "$SCRATCH/initrd.old"
check "the new image starts with the old one" cmp -n "$old_size" "$img" "$SCRATCH/initrd.old"
tail -c +$(((old_size + 3) / 4 * 4 + 1)) "$img" >"$SCRATCH/segment.cpio"
cpio -t --quiet <"$SCRATCH/segment.cpio" >"$LOGS/segment.list" 2>&1 || fail "cpio -t on the appended segment"
for f in kernel/drivers/block/virtio_blk.ko kernel/drivers/virtio/virtio_pci.ko modules.dep modules.dep.bin; do
  check "segment holds usr/lib/modules/$kver/$f" grep -qx "usr/lib/modules/$kver/$f" "$LOGS/segment.list"
done
check "segment has no entry for lib, usr, usr/lib or etc" bash -c "! grep -qxE 'lib|usr|usr/lib|etc' '$LOGS/segment.list'"
mkdir -p "$SCRATCH/seg"
(cd "$SCRATCH/seg" && cpio -idm --quiet --no-absolute-filenames <"$SCRATCH/segment.cpio")
check "rd.driver.pre= names virtio_pci and virtio_blk" \
  grep -qx 'rd.driver.pre=virtio_pci,virtio_blk' "$SCRATCH/seg/etc/cmdline.d/90-vdkit-virtio.conf"
check "the rebuilt modules.dep has the old xen-blkfront and the new virtio_blk" \
  bash -c "grep -q '^kernel/drivers/block/xen-blkfront.ko' '$SCRATCH/seg/usr/lib/modules/$kver/modules.dep' &&
    grep -q '^kernel/drivers/block/virtio_blk.ko:.*virtio_ring' '$SCRATCH/seg/usr/lib/modules/$kver/modules.dep'"
# dracut's own lister is the peer for the part dracut wrote.
head -c "$old_size" "$img" >"$tree/tmp/front.img"
check "lsinitrd lists the old part: xen-blkfront, no virtio_blk" \
  bash -c "chroot '$tree' lsinitrd /tmp/front.img | grep -q xen-blkfront.ko &&
    ! chroot '$tree' lsinitrd /tmp/front.img | grep -q virtio_blk.ko"
check "the guest's dracut config keeps the drivers" \
  grep -q 'add_drivers+=" virtio_pci virtio_blk "' "$tree/etc/dracut.conf.d/90-vdkit-virtio.conf"
"$VDKIT" fixup --dry-run "$tree" >"$LOGS/rerun.out" 2>&1 || true
check "a second run changes nothing in the initramfs" \
  bash -c "! grep -qE 'virtio-added-to-initrd|virtio-missing-from-initrd|^\\+\\+\\+ /boot/initrd' '$LOGS/rerun.out'"

# The boot, on request only (it would take the real-guest checks past their 10-minute budget): the same tree as a
# Xen-layout disk, converted with --fixup, boots on virtio-blk (169 s on the loaded dev machine, 2026-11-30).
if [ "${VDKIT_REALGUEST_DRACUT_BOOT:-0}" = 1 ]; then
  "$RG/make-xen-guest" --format raw --tree "$tarball" "$SCRATCH/dracut.raw" || fail "make-xen-guest --tree"
  "$VDKIT" convert --fixup -O qcow2 "$SCRATCH/dracut.raw" "$SCRATCH/dracut.qcow2" >"$LOGS/convert.out" 2>&1 ||
    fail "vdkit convert --fixup"
  "$RG/boot-check" --timeout 500 --log "$LOGS/fixed.serial" "$SCRATCH/dracut.qcow2" >"$SCRATCH/boot.out" || true
  cat "$SCRATCH/boot.out"
  check "the dracut guest boots on virtio-blk after convert --fixup" grep -q '^BOOTED' <(tail -n1 "$SCRATCH/boot.out")
fi
finish
