#!/usr/bin/env bash
# vdkit mount --rw: the edits tools make (sed -i, replace by rename, cp, mv, rm, mkdir, rmdir, chmod, chown, ln -s,
# ln, truncate, append, touch) land in a qcow2 overlay that qemu-img checks and reads, or in the source itself with
# --in-place (raw and qcow2); the result is e2fsck-clean, debugfs sees the edits, the tree equals the same edits made
# on a host copy, and a source written only through an overlay keeps its checksum. A full file system gives ENOSPC.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.sh"
fuse_require
make_guests
mp=$SCRATCH/mnt

# The same edits, on a mounted guest or on a host copy of the prepared tree.
apply_edits() {
  local d=$1
  sed -i 's/errors=remount-ro/errors=remount-ro,noatime/' "$d/etc/fstab"
  printf 'renamed-in\n' > "$d/etc/hostname.new" && mv "$d/etc/hostname.new" "$d/etc/hostname"
  mkdir -p "$d/opt/app/conf"
  cp "$d/usr/bin/tool" "$d/opt/app/tool"
  printf 'key=value\n' > "$d/opt/app/conf/app.conf"
  mv "$d/var/log/messages" "$d/opt/app/messages.old"
  rm "$d/home/user/file1" "$d/home/user/file2" "$d/home/user/dangling"
  rmdir "$d/empty"
  mkdir "$d/gone" && touch "$d/gone/x" && rm -r "$d/gone"
  chmod 0751 "$d/opt/app"
  chown 42:43 "$d/opt/app/conf/app.conf"
  ln -s /opt/app/tool "$d/usr/bin/tool-link"
  ln "$d/etc/passwd" "$d/etc/passwd.hard"
  truncate -s 1000 "$d/usr/bin/tool"
  printf 'appended\n' >> "$d/etc/hostname"
  touch -d '2020-01-02 03:04:05' "$d/etc/fstab"
  head -c 2000000 /dev/zero | tr '\0' 'b' > "$d/opt/app/big"    # a few extents' worth, written in large requests
}
expected=$SCRATCH/expected
cp -a "$GUESTS/tree" "$expected"
apply_edits "$expected"

# check_result RAW PART LABEL: the edited disk (raw bytes) is clean and shows the edits.
check_result() {
  local raw=$1 part=$2 label=$3 fsimg=$SCRATCH/fs.img
  rm -f "$fsimg"
  extract_fs "$raw" "$part" "$fsimg"
  check "$label: e2fsck -fn is clean" e2fsck -fn "$fsimg"
  check "$label: debugfs sees the sed -i edit of /etc/fstab" \
    bash -c "debugfs -R 'cat /etc/fstab' '$fsimg' 2>/dev/null | grep -q 'errors=remount-ro,noatime'"
  check "$label: debugfs sees the replaced /etc/hostname" \
    bash -c "[ \"\$(debugfs -R 'cat /etc/hostname' '$fsimg' 2>/dev/null)\" = \"\$(printf 'renamed-in\nappended')\" ]"
  rm -f "$fsimg"
  # Mount the result again (read-only) and compare it with the host copy that got the same edits.
  local again=$SCRATCH/again.raw
  if mount_vdkit "$raw" "$mp"; then
    if out=$(compare_tree "$expected" "$mp" 2>&1); then pass "$label: tree equals the same edits made on the host"
    else fail "$label: tree differs from the expected edits: $out"; fi
    umount_vdkit "$mp"
  else
    fail "$label: the result does not mount"
  fi
}

# 1. --overlay on qcow2 and streamOptimized VMDK sources.
for src in mbr.qcow2 gpt-stream.vmdk; do
  part=$(awk -F'\t' -v p="$GUESTS/$src" '$2 == p {print $3}' "$GUESTS/manifest.tsv")
  before=$(sum_of "$GUESTS/$src")
  ov=$SCRATCH/overlay-$src.qcow2
  if mount_vdkit --rw --overlay "$ov" "$GUESTS/$src" "$mp"; then
    if apply_edits "$mp"; then pass "$src: the edits succeed through the mount"; else fail "$src: an edit failed"; fi
    check "$src: unmount flushes" umount_vdkit "$mp"
    check "$src: overlay passes qemu-img check" qemu-img check -q "$ov"
    check "$src: overlay's backing file is the source" \
      bash -c "qemu-img info --output=json '$ov' | grep -q '\"backing-filename\"'"
    qemu-img convert -O raw "$ov" "$SCRATCH/edited.raw"
    check_result "$SCRATCH/edited.raw" "$part" "$src overlay"
    rm -f "$SCRATCH/edited.raw"
  else
    fail "$src: --rw --overlay mount failed"
  fi
  check "$src: source checksum unchanged" [ "$(sum_of "$GUESTS/$src")" = "$before" ]
done

# 2. --in-place on raw and qcow2 copies.
for src in gpt.raw mbr.qcow2; do
  part=$(awk -F'\t' -v p="$GUESTS/$src" '$2 == p {print $3}' "$GUESTS/manifest.tsv")
  copy=$SCRATCH/inplace-$src
  cp --sparse=always "$GUESTS/$src" "$copy"
  if mount_vdkit --rw --in-place "$copy" "$mp"; then
    if apply_edits "$mp"; then pass "$src in place: the edits succeed"; else fail "$src in place: an edit failed"; fi
    check "$src in place: unmount flushes" umount_vdkit "$mp"
    if [ "${src##*.}" = qcow2 ]; then
      check "$src in place: qemu-img check" qemu-img check -q "$copy"
      qemu-img convert -O raw "$copy" "$SCRATCH/edited.raw"
      check_result "$SCRATCH/edited.raw" "$part" "$src in place"
      rm -f "$SCRATCH/edited.raw"
    else
      check_result "$copy" "$part" "$src in place"
    fi
  else
    fail "$src: --rw --in-place mount failed"
  fi
  rm -f "$copy"
done

# 3. A full file system: ENOSPC reaches the writer, the daemon stays up, the file system stays clean.
before=$(sum_of "$GUESTS/whole.raw")
ov=$SCRATCH/full.qcow2
if mount_vdkit --rw --overlay "$ov" "$GUESTS/whole.raw" "$mp"; then
  set +e
  dd if=/dev/zero of="$mp/fill" bs=1M count=64 status=none 2>"$SCRATCH/err"; rc=$?
  set -e
  check "filling the file system fails" [ "$rc" -ne 0 ]
  check "the error is ENOSPC" grep -q "No space left on device" "$SCRATCH/err"
  check "the daemon still serves" grep -qx guest "$mp/etc/hostname.hard"
  check "the partial file can be removed" rm "$mp/fill"
  check "unmount after ENOSPC" umount_vdkit "$mp"
  qemu-img convert -O raw "$ov" "$SCRATCH/full.raw"
  check "after ENOSPC e2fsck -fn is clean" e2fsck -fn "$SCRATCH/full.raw"
  rm -f "$SCRATCH/full.raw"
else
  fail "--rw --overlay mount of whole.raw failed"
fi
check "whole.raw unchanged" [ "$(sum_of "$GUESTS/whole.raw")" = "$before" ]

# 4. --rw without --overlay keeps writes in memory: the source is untouched.
before=$(sum_of "$GUESTS/gpt.raw")
if mount_vdkit --rw "$GUESTS/gpt.raw" "$mp"; then
  check "memory overlay accepts edits" apply_edits "$mp"
  check "memory overlay shows them" grep -q noatime "$mp/etc/fstab"
  umount_vdkit "$mp"
fi
check "gpt.raw unchanged after a memory-overlay mount" [ "$(sum_of "$GUESTS/gpt.raw")" = "$before" ]
finish
