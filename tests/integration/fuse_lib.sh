# Helpers for the FUSE tests (sourced after lib.sh): skip rules, guest disks, and mounts that are always torn down.
fuse_require() {
  [ -e /dev/fuse ] || skip "no /dev/fuse on this machine"
  command -v fusermount3 >/dev/null || skip "fusermount3 (package fuse3) is not installed"
  [ "$(id -u)" -eq 0 ] || skip "the prepared guest tree needs root (chown to 1234:5678, mknod)"
  [ -x "$VDKIT" ] || skip "vdkit is not built at $VDKIT"
}
MOUNTS=()
# mount_vdkit ARGS... MOUNTPOINT: vdkit mount, remembered for cleanup.
mount_vdkit() {
  local mp=${*: -1}
  mkdir -p "$mp"
  if "$VDKIT" mount --log "$SCRATCH/mount.log" "$@"; then MOUNTS+=("$mp"); return 0; fi
  return 1
}
umount_vdkit() {
  local mp=$1 i
  "$VDKIT" umount "$mp" || return 1
  for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" = "$mp" ] && unset 'MOUNTS[i]'; done
  return 0
}
cleanup_fuse() {
  local mp
  for mp in "${MOUNTS[@]}"; do "$VDKIT" umount "$mp" 2>/dev/null || fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
  [ -s "$SCRATCH/mount.log" ] && { echo "--- daemon log"; cat "$SCRATCH/mount.log"; }
  cleanup_scratch
}
trap cleanup_fuse EXIT
# make_guests: builds the guest disks in $GUESTS (manifest: name, path, partition).
make_guests() {
  GUESTS=$SCRATCH/guests
  "$VDKIT_SRC/scripts/make-guest-fs" "$GUESTS" >/dev/null
}
compare_tree() { python3 "$VDKIT_SRC/tests/integration/fuse_compare_tree.py" "$@"; }
# extract_fs RAW PART OUT: copies the file system of partition PART (0: whole disk) of RAW to OUT.
extract_fs() {
  local raw=$1 part=$2 out=$3
  if [ "$part" -eq 0 ]; then cp --sparse=always "$raw" "$out"; return; fi
  local start size
  read -r start size < <(sfdisk --json "$raw" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions'][int(sys.argv[1]) - 1]; print(p['start'], p['size'])" "$part")
  [ -n "$start" ] || return 1
  dd if="$raw" of="$out" bs=512 skip="$start" count="$size" conv=sparse status=none
}
