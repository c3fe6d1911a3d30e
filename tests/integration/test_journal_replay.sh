#!/usr/bin/env bash
# Guests whose newest fstab and boot config are only in their ext4 journal, made two ways: debugfs's
# journal_open/journal_write/journal_close (every test run), and the kernel itself (a loop mount with data=journal
# shut down by xfs_io; root only). inspect reports the journal and the replayed content; convert --fixup and
# fixup -o write the journal's content with the fixups applied; the output is e2fsck -fn clean and e2fsck
# -E journal_only finds nothing left; the source is unchanged; --in-place needs --replay-journal; a journal that
# fails its checksums is reported and needs --force. Also the pre-write consistency checks (a group descriptor's
# free count that disagrees with its bitmap is refused without --force).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/journal_lib.sh"
for t in debugfs e2fsck dumpe2fs qemu-img sfdisk mkfs.ext4 python3; do
  command -v "$t" >/dev/null || PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null || skip "$t is not installed"
done
export PATH=$PATH:/sbin:/usr/sbin
UUID=2004bbbb-0000-4000-8000-000000000001

json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}

# said PATTERN: the last refusal's message ($msg) contains PATTERN.
said() { grep -q -- "$1" <<<"$msg"; }

# fs_clean IMG: e2fsck -fn finds nothing, and recovering the journal again changes no byte.
fs_clean() {
  local img=$1 before
  e2fsck -fn "$img" >"$SCRATCH/fsck.log" 2>&1 || { cat "$SCRATCH/fsck.log" >&2; return 1; }
  before=$(sum_of "$img")
  cp "$img" "$SCRATCH/again.img"
  e2fsck -E journal_only -p "$SCRATCH/again.img" >/dev/null 2>&1 || return 1
  [ "$(sum_of "$SCRATCH/again.img")" = "$before" ] || { echo "  journal_only changed the output" >&2; return 1; }
  ! dumpe2fs -h "$img" 2>/dev/null | grep -q needs_recovery
}

# --- a test guest whose fstab and grub.cfg changes are only in the journal (debugfs) ---
g=$SCRATCH/g
"$VDKIT_SRC/scripts/make-guest" ubuntu2004 "$g" >/dev/null
raw=$g/ubuntu2004.raw
off=$(part_offset "$g/ubuntu2004.parts" 1)
size=$(part_size "$g/ubuntu2004.parts" 1)
extract "$raw" "$off" "$size" "$SCRATCH/old.img"
cp "$SCRATCH/old.img" "$SCRATCH/new.img"
printf '/dev/xvda1\t/\text4\tdefaults\t0 1\n' >"$SCRATCH/fstab"
debugfs -R 'cat boot/grub/grub.cfg' "$SCRATCH/new.img" 2>/dev/null | sed 's|root=[^ ]*|root=/dev/xvda1|' \
  >"$SCRATCH/grub.cfg"
debugfs -w -f - "$SCRATCH/new.img" >/dev/null 2>&1 <<EOF
rm etc/fstab
write $SCRATCH/fstab etc/fstab
rm boot/grub/grub.cfg
write $SCRATCH/grub.cfg boot/grub/grub.cfg
EOF
check "debugfs logged the new fstab and grub.cfg as one committed transaction" \
  journalize "$SCRATCH/old.img" "$SCRATCH/new.img"
put_back "$raw" "$off" "$SCRATCH/old.img"
check "without replay the guest still has its old fstab (debugfs -c)" \
  grep -q '^LABEL=cloudimg-rootfs' <(debugfs -c -R 'cat etc/fstab' "$SCRATCH/old.img" 2>/dev/null)
qemu-img convert -O qcow2 "$raw" "$g/src.qcow2"
for src in "$raw" "$g/src.qcow2"; do
  name=$(basename "$src")
  sum=$(sum_of "$src")
  "$VDKIT" inspect --output=json "$src" >"$SCRATCH/inspect.json"
  check "$name: inspect reports the journal v2 replayed (1 transaction)" \
    [ "$(json_get "$SCRATCH/inspect.json" journals.0.state)/$(json_get "$SCRATCH/inspect.json" journals.0.version)/$(json_get "$SCRATCH/inspect.json" journals.0.replayed.transactions)" = "replayed/2/1" ]
  check "$name: inspect shows the journal's fstab" [ "$(json_get "$SCRATCH/inspect.json" fstab.0.device)" = /dev/xvda1 ]
  check "$name: human inspect names the replay" grep -q "journal v2.*replayed 1 transaction" <("$VDKIT" inspect "$src")
  "$VDKIT" fixup --dry-run "$src" >"$SCRATCH/dry.txt"
  check "$name: the dry run diffs the journal's fstab" grep -q '^-/dev/xvda1' "$SCRATCH/dry.txt"
  out=$SCRATCH/out.qcow2
  rm -f "$out"
  "$VDKIT" convert --fixup --output-json "$src" "$out" >"$SCRATCH/conv.json"
  check "$name: convert --fixup reports the replay in JSON" \
    [ "$(json_get "$SCRATCH/conv.json" fixup.journals.0.replayed.blocks)" -ge 3 ]
  qemu-img convert -O raw "$out" "$SCRATCH/out.raw"
  extract "$SCRATCH/out.raw" "$off" "$size" "$SCRATCH/out.img"
  check "$name: the output's fstab is the journal's with the fixups" \
    [ "$(debugfs -R 'cat etc/fstab' "$SCRATCH/out.img" 2>/dev/null)" = "$(printf 'UUID=%s\t/\text4\tdefaults\t0 1' $UUID)" ]
  check "$name: the output's grub.cfg is the journal's with the fixups" \
    bash -c "debugfs -R 'cat boot/grub/grub.cfg' '$SCRATCH/out.img' 2>/dev/null | grep -q 'root=UUID=$UUID' &&
             ! debugfs -R 'cat boot/grub/grub.cfg' '$SCRATCH/out.img' 2>/dev/null | grep -q xvda"
  check "$name: the output is e2fsck -fn clean with nothing left to recover" fs_clean "$SCRATCH/out.img"
  check "$name: the source is unchanged" [ "$(sum_of "$src")" = "$sum" ]
done

# vdkit mount: read-only replays into memory, --rw into its overlay, --in-place refuses; the source stays.
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  sum=$(sum_of "$raw")
  mkdir -p "$SCRATCH/m"
  "$VDKIT" mount "$raw" "$SCRATCH/m" 2>"$SCRATCH/mount.err"
  check "mount (read-only) shows the journal's fstab" grep -q '^/dev/xvda1' "$SCRATCH/m/etc/fstab"
  "$VDKIT" umount "$SCRATCH/m"
  check "mount says it replayed the journal" grep -q 'replayed 1 transaction' "$SCRATCH/mount.err"
  rc=0
  "$VDKIT" mount --rw --in-place "$raw" "$SCRATCH/m" 2>/dev/null || rc=$?
  [ $rc = 0 ] && "$VDKIT" umount "$SCRATCH/m"
  check "mount --rw --in-place refuses a journal that needs recovery" [ $rc = 1 ]
  check "mount left the source unchanged" [ "$(sum_of "$raw")" = "$sum" ]
else
  echo "SKIP: vdkit mount cases (no /dev/fuse or fusermount3)"
fi

# fixup -o: the same through the fixup command.
"$VDKIT" fixup --output-json -o "$SCRATCH/o2.qcow2" "$raw" >"$SCRATCH/fix.json"
check "fixup -o reports the replay" [ "$(json_get "$SCRATCH/fix.json" journals.0.state)" = replayed ]

# --in-place: refused without --replay-journal, naming it; with it, replayed into the image itself.
cp "$raw" "$SCRATCH/inplace.raw"
sum=$(sum_of "$SCRATCH/inplace.raw")
rc=0
msg=$("$VDKIT" fixup --in-place "$SCRATCH/inplace.raw" 2>&1) || rc=$?
check "--in-place without --replay-journal is refused" [ $rc = 1 ]
check "... naming --replay-journal" said --replay-journal
check "the refused image is unchanged" [ "$(sum_of "$SCRATCH/inplace.raw")" = "$sum" ]
"$VDKIT" fixup --in-place --replay-journal "$SCRATCH/inplace.raw" >/dev/null
extract "$SCRATCH/inplace.raw" "$off" "$size" "$SCRATCH/inplace.img"
check "--in-place --replay-journal fixes the journal's fstab in the image" \
  grep -q "^UUID=$UUID" <(debugfs -R 'cat etc/fstab' "$SCRATCH/inplace.img" 2>/dev/null)
check "--in-place --replay-journal leaves the file system clean" fs_clean "$SCRATCH/inplace.img"

# --- the pre-write checks: a group descriptor whose free count disagrees with its bitmap ---
"$VDKIT_SRC/scripts/make-guest" ubuntu2004 "$SCRATCH/h" >/dev/null
hraw=$SCRATCH/h/ubuntu2004.raw
extract "$hraw" "$off" "$size" "$SCRATCH/h.img"
debugfs -w -R 'set_bg 0 free_blocks_count 7' "$SCRATCH/h.img" >/dev/null 2>&1
debugfs -w -R 'set_bg 0 checksum calc' "$SCRATCH/h.img" >/dev/null 2>&1
put_back "$hraw" "$off" "$SCRATCH/h.img"
rc=0
msg=$("$VDKIT" fixup -o "$SCRATCH/h.qcow2" "$hraw" 2>&1) || rc=$?
check "fixup -o refuses an inconsistent file system and leaves no target" [ $rc = 1 -a ! -e "$SCRATCH/h.qcow2" ]
check "... naming the group" said 'group 0: its descriptor counts 7 free blocks'
check "... and --force" said --force
check "... and --force writes anyway" "$VDKIT" fixup --force -o "$SCRATCH/h.qcow2" "$hraw" >/dev/null

# --- every test guest: an fstab edit only in the root's journal comes through convert --fixup, and every ext file
# system of the output is e2fsck -fn clean ---
for name in $("$VDKIT_SRC/scripts/make-guest" --list); do
  # ext journals only: XFS and Btrfs guests are written through the kernel (test_fixup_xfs_guests.sh,
  # test_btrfs_guests.sh).
  grep -Eq '^part .* xfs(-v4)? |^btrfs ' "$VDKIT_SRC/tests/guests/$name/manifest" && continue
  d=$SCRATCH/all.$name
  "$VDKIT_SRC/scripts/make-guest" "$name" "$d" >/dev/null
  "$VDKIT" inspect --output=json "$d/$name.raw" >"$d/i.json"
  rootpart=$(python3 -c 'import json,sys; print(next(f["partition"] for f in json.load(open(sys.argv[1]))["filesystems"] if f.get("mountpoint") == "/"))' "$d/i.json")
  if [ "$rootpart" = 0 ]; then roff=0 rsize=$(stat -c %s "$d/$name.raw"); else
    roff=$(part_offset "$d/$name.parts" "$rootpart") rsize=$(part_size "$d/$name.parts" "$rootpart"); fi
  extract "$d/$name.raw" "$roff" "$rsize" "$d/old.img"
  cp "$d/old.img" "$d/new.img"
  { debugfs -R 'cat etc/fstab' "$d/old.img" 2>/dev/null; echo '# added, only in the journal'; } >"$d/fstab"
  printf 'rm etc/fstab\nwrite %s etc/fstab\n' "$d/fstab" | debugfs -w -f - "$d/new.img" >/dev/null 2>&1
  journalize "$d/old.img" "$d/new.img" && put_back "$d/$name.raw" "$roff" "$d/old.img"
  "$VDKIT" convert --fixup -O raw "$d/$name.raw" "$d/out.raw" >/dev/null || { fail "$name: convert --fixup"; continue; }
  extract "$d/out.raw" "$roff" "$rsize" "$d/root.img"
  check "$name: the fixed fstab keeps the line only the journal had" \
    grep -q '^# added, only in the journal' <(debugfs -R 'cat etc/fstab' "$d/root.img" 2>/dev/null)
  ok=1
  while read -r num poff psize type; do
    case $type in ext*) ;; *) continue ;; esac
    if [ "$num" = 0 ]; then cp "$d/out.raw" "$d/p.img"; else extract "$d/out.raw" "$poff" "$psize" "$d/p.img"; fi
    e2fsck -fn "$d/p.img" >"$d/fsck" 2>&1 || { cat "$d/fsck" >&2; ok=0; }
  done <"$d/$name.parts"
  check "$name: every ext file system of the output is e2fsck -fn clean" [ $ok = 1 ]
  rm -rf "$d"
done

# --- the kernel's own journal: checksum v3, an orphan, a shutdown under the mounted file system ---
# kernel_journal IMG: writes the Xen names into a loop-mounted ext4, shuts it down and keeps the image as it was
# then. data=journal logs the contents too, and commit=1 commits them within a second; the caller checks that
# the new fstab is only in the journal, and tries again if the host wrote a logged block back early.
kernel_journal() {
  local p=$1 m=$SCRATCH/mnt
  rm -f "$p"
  truncate -s 64M "$p"
  mkfs.ext4 -q -F -U $UUID "$p"
  mkdir -p "$m"
  mount -o loop,data=journal,commit=1 "$p" "$m" 2>/dev/null || return 2
  mkdir -p "$m/etc" "$m/boot/extlinux"
  printf '/dev/sda1 / ext4 defaults 0 1\n' >"$m/etc/fstab"
  printf 'DEFAULT linux\nLABEL linux\n  KERNEL /boot/vmlinuz\n  APPEND root=/dev/sda1 ro\n' >"$m/boot/extlinux/extlinux.conf"
  sync
  printf '/dev/xvda1 / ext4 defaults 0 1\n' >"$m/etc/fstab"
  sed -i 's|/dev/sda1|/dev/xvda1|' "$m/boot/extlinux/extlinux.conf"
  echo gone >"$m/gone"
  exec 3<"$m/gone"
  rm "$m/gone"
  sleep 2.5
  xfs_io -x -c shutdown "$m"
  # The snapshot of a running guest: the image now, before the unmount's sync writes the logged blocks in place.
  cp --sparse=always "$p" "$p.snap"
  exec 3<&-
  umount "$m"
  mv "$p.snap" "$p"
  ! debugfs -c -R 'cat etc/fstab' "$p" 2>/dev/null | grep -q xvda
}

if [ "$(id -u)" = 0 ] && command -v xfs_io >/dev/null; then
  k=$SCRATCH/k.img p=$SCRATCH/kp.img
  for try in 1 2 3; do
    rc=0
    kernel_journal "$p" || rc=$?
    [ $rc = 1 ] || break
    echo "  try $try: the host wrote the logged blocks back before the shutdown; again"
  done
  if [ $rc = 0 ]; then
    pass "kernel: without replay the Xen fstab is not on disk (debugfs -c)"
    # The disk: an MBR with the file system as partition 1 at 1 MiB.
    truncate -s 66M "$k"
    echo 'start=2048, size=131072, type=83' | sfdisk -q "$k"
    put_back "$k" 1048576 "$p"
    sum=$(sum_of "$k")
    "$VDKIT" inspect --output=json "$k" >"$SCRATCH/k.json"
    check "kernel: inspect reports journal v2 with checksum v3, replayed, one orphan freed" \
      [ "$(json_get "$SCRATCH/k.json" journals.0.version)/$(json_get "$SCRATCH/k.json" journals.0.checksum)/$(json_get "$SCRATCH/k.json" journals.0.state)/$(json_get "$SCRATCH/k.json" journals.0.replayed.orphans-freed)" = 2/v3/replayed/1 ]
    check "kernel: inspect sees the journal's fstab" [ "$(json_get "$SCRATCH/k.json" fstab.0.device)" = /dev/xvda1 ]
    rm -f "$SCRATCH/k.out"
    "$VDKIT" convert --fixup -O raw "$k" "$SCRATCH/k.out" >/dev/null
    extract "$SCRATCH/k.out" 1048576 $((64 << 20)) "$SCRATCH/kout.img"
    check "kernel: the converted fstab is the journal's, fixed" \
      [ "$(debugfs -R 'cat etc/fstab' "$SCRATCH/kout.img" 2>/dev/null)" = "UUID=$UUID / ext4 defaults 0 1" ]
    check "kernel: the converted extlinux.conf is the journal's, fixed" \
      grep -q "root=UUID=$UUID" <(debugfs -R 'cat boot/extlinux/extlinux.conf' "$SCRATCH/kout.img" 2>/dev/null)
    check "kernel: the output is e2fsck -fn clean with nothing left to recover" fs_clean "$SCRATCH/kout.img"
    check "kernel: the source is unchanged" [ "$(sum_of "$k")" = "$sum" ]

    # A checksum failure in the last transaction: reported, and writing needs --force.
    last=$(debugfs -R logdump "$p" 2>/dev/null | grep 'descriptor block' | tail -1 | sed 's/.*at block //')
    phys=$(debugfs -R "bmap <8> $((last + 1))" "$p" 2>/dev/null)
    bs=$(dumpe2fs -h "$p" 2>/dev/null | sed -n 's/^Block size: *//p')
    printf '\xff' | dd of="$k" bs=1 seek=$((1048576 + phys * bs + 100)) conv=notrunc status=none
    "$VDKIT" inspect --output=json "$k" >"$SCRATCH/k2.json"
    check "kernel, corrupted: inspect reports what was not replayed" \
      bash -c "[ \"\$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))[\"journals\"][0]; print(j[\"state\"], \"checksum\" in j[\"not-replayed\"])' '$SCRATCH/k2.json')\" = 'replayed-partly True' ]"
    rm -f "$SCRATCH/k2.out"
    rc=0
    msg=$("$VDKIT" convert --fixup -O raw "$k" "$SCRATCH/k2.out" 2>&1) || rc=$?
    check "kernel, corrupted: convert --fixup refuses and leaves no target" [ $rc = 1 -a ! -e "$SCRATCH/k2.out" ]
    check "kernel, corrupted: ... saying what was not replayed" said 'NOT replayed from transaction'
    check "kernel, corrupted: ... naming --force" said --force
    "$VDKIT" convert --fixup --force -O raw "$k" "$SCRATCH/k2.out" >/dev/null
    extract "$SCRATCH/k2.out" 1048576 $((64 << 20)) "$SCRATCH/k2out.img"
    check "kernel, corrupted: with --force the output is clean" fs_clean "$SCRATCH/k2out.img"
  else
    echo "SKIP: kernel journal cases ($([ $rc = 2 ] && echo 'cannot loop-mount' || echo 'the host kept writing the log back'))"
  fi
else
  echo "SKIP: kernel journal cases (need root and xfs_io)"
fi
finish
