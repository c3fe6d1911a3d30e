#!/usr/bin/env bash
# The Xen guest of test_xen_guest_boot.sh, aged (tests/realguest/age-guest: each file system filled with files, half
# of them deleted), converted with `vdkit convert --fixup --sparsify -O qcow2`: both file trees the same as a plain
# `--fixup` conversion's (contents, modes, owners, xattrs, through read-only kernel mounts), e2fsck -fn clean, the
# target no bigger than the file systems' used blocks + 5%, the deleted files' bytes gone, and the guest boots.
# The layout's unfixed control (it does not boot as Xen left it) is test_xen_guest_boot.sh's.
#
# Measured on the 2-core dev machine with the tree cached, while six other engineers built and tested: 241 s and
# 288 s in total, of which the boot took 135 s and 104 s; the conversion 2-3 s; the rest making, ageing (60% of the
# free space filled, half deleted), comparing and checking the guest. Expect about 2.5 minutes on a quiet machine.
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
T0=$SECONDS
LOGS=$VDKIT_BUILD/tests/realguest-logs
mkdir -p "$LOGS"
COMPARE=$VDKIT_SRC/tests/integration/fuse_compare_tree.py

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }
for t in qemu-system-x86_64 qemu-img sfdisk e2fsck dumpe2fs extlinux; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/setup installs it)"
done
# Only a cached tree: building one is test_xen_guest_boot.sh's job (and takes minutes).
"$RG/build-rootfs" --check >/dev/null || skip "no cached Debian tree (run test_xen_guest_boot.sh or build-rootfs)"

MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do [ -n "$m" ] && umount "$m" 2>/dev/null; done
  cleanup_scratch
}
trap cleanup EXIT

src=$SCRATCH/aged.raw
check "make-xen-guest --format raw" "$RG/make-xen-guest" --format raw "$src"
[ -s "$src" ] || finish
check "age-guest: filled, half deleted" "$RG/age-guest" "$src" 60
sum=$(sum_of "$src")

t=$SECONDS
"$VDKIT" convert --fixup --sparsify --output-json -O qcow2 "$src" "$SCRATCH/sparse.qcow2" >"$SCRATCH/sparse.json" ||
  { fail "vdkit convert --fixup --sparsify"; finish; }
pass "vdkit convert --fixup --sparsify -O qcow2 ($((SECONDS - t)) s)"
cp "$SCRATCH/sparse.json" "$LOGS/sparsify.json"
"$VDKIT" convert --fixup "$src" "$SCRATCH/fixed.raw" >/dev/null
check "source unchanged" [ "$(sum_of "$src")" = "$sum" ]
qemu-img convert -O raw "$SCRATCH/sparse.qcow2" "$SCRATCH/sparse.raw"

fsck_clean() { e2fsck -fn "$1" >"$SCRATCH/fsck.out" 2>&1 || { cat "$SCRATCH/fsck.out" >&2; return 1; }; }
mapfile -t geo < <(sfdisk -d "$src" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1\n\2/p')
used=$((1 << 20))  # the boot-loader gap before partition 1
for ((i = 0; i < ${#geo[@]}; i += 2)); do
  off=$((geo[i] * 512)) size=$((geo[i + 1] * 512)) n=$((i / 2 + 1))
  a=$SCRATCH/m$n.a b=$SCRATCH/m$n.b
  mkdir -p "$a" "$b"
  mount -o ro,noload,loop,offset=$off,sizelimit=$size "$SCRATCH/fixed.raw" "$a" && MOUNTS+=("$a")
  mount -o ro,noload,loop,offset=$off,sizelimit=$size "$SCRATCH/sparse.raw" "$b" && MOUNTS+=("$b")
  check "partition $n: same tree as the --fixup conversion" python3 "$COMPARE" "$a" "$b"
  umount "$a" "$b"
  MOUNTS=()
  dd if="$SCRATCH/sparse.raw" of="$SCRATCH/part.img" bs=1M iflag=skip_bytes,count_bytes conv=sparse status=none \
    skip=$off count=$size
  check "partition $n: e2fsck -fn clean" fsck_clean "$SCRATCH/part.img"
  used=$((used + $(dumpe2fs -h "$SCRATCH/part.img" 2>/dev/null |
    awk -F: '/^Block count/{c=$2} /^Free blocks/{f=$2} /^Block size/{b=$2} END{print (c-f)*b}')))
  rm -f "$SCRATCH/part.img"
done
check "the deleted files' bytes are in the source" grep -qa 'aged guest line 0 of a log' "$src"
check "the deleted files' bytes are not in the target" bash -c "! grep -qa 'aged guest line 0 of a log' \
  '$SCRATCH/sparse.raw'"
got=$(stat -c %s "$SCRATCH/sparse.qcow2")
echo "sizes: used blocks + boot gap $used, --sparsify qcow2 $got, skipped $(python3 -c \
  'import json,sys; print(json.load(open(sys.argv[1]))["sparsify"]["bytes-skipped"])' "$SCRATCH/sparse.json")"
check "target within the used blocks + 5% ($got <= $used * 1.05)" [ $((got * 100)) -le $((used * 105)) ]
rm -f "$SCRATCH/fixed.raw" "$SCRATCH/sparse.raw"

"$RG/boot-check" --timeout 300 --log "$LOGS/sparsified.serial" "$SCRATCH/sparse.qcow2" >"$SCRATCH/boot.out" || true
cat "$SCRATCH/boot.out"
read -r STATE BOOT_SECONDS _ < <(tail -n1 "$SCRATCH/boot.out") || true
check "sparsified guest boots: $STATE" [ "$STATE" = BOOTED ]
check "sparsified guest: fstab mounts / and /srv present" \
  [ "$(grep '^VDKIT-MOUNT .* mounted$' "$SCRATCH/boot.out" | cut -d' ' -f2 | sort | tr '\n' ' ')" = "/ /srv " ]
echo "timings: boot ${BOOT_SECONDS:-?} s, total $((SECONDS - T0)) s"
finish
