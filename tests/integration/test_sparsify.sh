#!/usr/bin/env bash
# convert --sparsify and the NBD export's sparsify=true on disks full of garbage: every file tree (contents, modes,
# owners, user xattrs) the same as the source's through read-only kernel mounts, e2fsck -fn clean, the kept areas
# (boot-loader gap, MBR/EBRs, both GPTs, swap header, unknown, dirty and hibernated volumes) byte for byte the
# source's, deleted data gone, and the target no bigger than the file systems' used blocks + what is kept + 5%.
# Needs root (loop mounts). About 40 s on the loaded 2-core dev machine.
source "$(dirname "$0")/lib.sh"
export PATH=$PATH:/sbin:/usr/sbin
for t in mkfs.ext4 mkfs.ext2 mkswap debugfs dumpe2fs e2fsck sfdisk qemu-img nbdkit nbdcopy nbdinfo blkid setfattr; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
[ "$(id -u)" = 0 ] || skip "needs root for read-only loop mounts of the file systems"
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
COMPARE=$VDKIT_SRC/tests/integration/fuse_compare_tree.py
MB=1048576

MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  cleanup_scratch
}
trap cleanup EXIT

json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}
# The sparsify report of volume PARTITION in a convert --output-json file: "mapped bytes-skipped reason".
volume_report() {
  python3 - "$1" "$2" <<'PY'
import json, sys
for v in json.load(open(sys.argv[1]))["sparsify"]["volumes"]:
    if v["partition"] == int(sys.argv[2]):
        print(v["mapped"], v["bytes-skipped"], v.get("copied-whole", "-"))
PY
}
# part_field IMG N start|size: partition N's first sector or sector count, as sfdisk reads the table.
part_field() {
  sfdisk --json "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p["node"].endswith(sys.argv[1]) and not p["node"][:-len(sys.argv[1])][-1].isdigit():
        print(p[sys.argv[2]])' "$2" "$3"
}
# same_region A B OFFSET LENGTH: the bytes are identical in both files.
same_region() {
  cmp -s <(dd if="$1" bs=512 skip=$(($3 / 512)) count=$(($4 / 512)) status=none) \
    <(dd if="$2" bs=512 skip=$(($3 / 512)) count=$(($4 / 512)) status=none)
}
# used_bytes FS_FILE: what the ext file system's own bitmaps count as used (journal and metadata included).
used_bytes() {
  dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Free blocks/{f=$2} /^Block size/{b=$2}
    END{print (c-f)*b}'
}
# ro_mount IMG OFFSET SIZE DIR: a read-only mount that replays nothing (the image as it is; ext2 has no journal).
ro_mount() {
  mkdir -p "$4"
  local noload=,noload
  [ "$(blkid -p -o value -s TYPE -O "$2" "$1")" = ext2 ] && noload=
  mount -o ro$noload,loop,offset="$2",sizelimit="$3" "$1" "$4" && MOUNTS+=("$4")
}
ro_umount() { umount "$1" && MOUNTS=("${MOUNTS[@]/$1/}"); }
# same_tree SRC DST OFFSET SIZE NAME: the ext file system at OFFSET has the same tree in both disks, and the
# target's is e2fsck -fn clean.
same_tree() {
  local a=$SCRATCH/m.$5.a b=$SCRATCH/m.$5.b
  ro_mount "$1" "$3" "$4" "$a" || return 1
  ro_mount "$2" "$3" "$4" "$b" || { ro_umount "$a"; return 1; }
  local rc=0
  python3 "$COMPARE" "$a" "$b" || rc=1
  ro_umount "$a"
  ro_umount "$b"
  dd if="$2" of="$SCRATCH/fsck.img" bs=$MB skip=$(($3 / MB)) count=$(($4 / MB)) status=none
  e2fsck -fn "$SCRATCH/fsck.img" >"$SCRATCH/fsck.out" 2>&1 || { cat "$SCRATCH/fsck.out" >&2; rc=1; }
  rm -f "$SCRATCH/fsck.img"
  return $rc
}

# A tree with what a guest has: modes, owners, a setuid binary, symlinks, a hard link, xattrs, an empty file.
make_tree() {
  local t=$1
  mkdir -p "$t/etc" "$t/usr/bin" "$t/home/u/.ssh" "$t/var/lib"
  head -c 300000 /dev/urandom >"$t/usr/bin/tool"
  chmod 4755 "$t/usr/bin/tool"
  echo "root:x:0:0" >"$t/etc/passwd"
  head -c 5000 /dev/urandom >"$t/home/u/.ssh/id"
  chmod 600 "$t/home/u/.ssh/id"
  chmod 700 "$t/home/u/.ssh"
  chown -R 1234:5678 "$t/home/u"
  ln -s ../usr/bin/tool "$t/etc/link"
  ln "$t/usr/bin/tool" "$t/var/lib/hard"
  : >"$t/var/lib/empty"
  setfattr -n user.vdkit -v kept "$t/etc/passwd"
  setfattr -n user.big -v "$(head -c 400 /dev/zero | tr '\0' x)" "$t/var/lib/empty"
}

# An ext file system on a file first filled with garbage (nothing zeroes its free blocks), aged the way real disks
# age: filled with files through the kernel, half of them deleted. Deleted files carry a marker that must not reach
# the target.
make_aged_ext() {
  local img=$1 size_mb=$2 type=$3 tag=$(basename "$1") tree=$SCRATCH/tree.$RANDOM
  shift 3  # the rest: mkfs options
  make_tree "$tree"
  head -c $((size_mb * MB)) /dev/urandom >"$img"
  "mkfs.$type" -q -F -E nodiscard "$@" -d "$tree" "$img"
  local m=$SCRATCH/age.$RANDOM
  mkdir -p "$m"
  mount -o loop "$img" "$m" && MOUNTS+=("$m")
  mkdir -p "$m/data"
  local n=$((size_mb / 3))
  for i in $(seq 1 "$n"); do
    { printf 'VDKIT-DELETED-%s-%s\n' "$tag" "$i"; head -c $((MB - 100)) /dev/urandom; } >"$m/data/f$i"
  done
  sync -f "$m/data"  # on disk before the deletes, or delayed allocation never writes them
  for i in $(seq 1 2 "$n"); do rm "$m/data/f$i"; done
  for i in $(seq 2 2 "$n"); do sed -i '1s/DELETED/KEPT/' "$m/data/f$i"; done
  ro_umount "$m"
}

# ---------------------------------------------------------------- MBR: primaries, logical chain, every case
disk=$SCRATCH/mbr.img
head -c $((96 * MB)) /dev/urandom >"$disk"
printf 'label: dos\n,40M,83\n,8M,82\n,,5\n,8M,83\n,4M,83\n,4M,82\n,8M,83\n' | sfdisk -q "$disk"
declare -A OFF LEN
for n in 1 2 5 6 7 8; do
  OFF[$n]=$(($(part_field "$disk" $n start) * 512))
  LEN[$n]=$(($(part_field "$disk" $n size) * 512))
done
put() { dd if="$1" of="$disk" bs=$MB seek=$((OFF[$2] / MB)) conv=notrunc status=none; }
make_aged_ext "$SCRATCH/p1" 40 ext4
put "$SCRATCH/p1" 1
head -c $((8 * MB)) /dev/urandom >"$SCRATCH/p2"
mkswap -q -L vdkitswap -U 5ca1ab1e-0000-4000-8000-000000000002 "$SCRATCH/p2"
put "$SCRATCH/p2" 2
# 5: a journal that needs recovery (the guest went down with it mounted): copied whole.
make_aged_ext "$SCRATCH/p5" 8 ext4
debugfs -w -R 'feature needs_recovery' "$SCRATCH/p5" >/dev/null 2>&1
put "$SCRATCH/p5" 5
# 6: random bytes, nothing vdkit knows (and 7 a swap area holding a hibernation image): copied whole.
head -c $((4 * MB)) /dev/urandom >"$SCRATCH/p7"
mkswap -q "$SCRATCH/p7"
printf 'S1SUSPEND\0' | dd of="$SCRATCH/p7" bs=1 seek=4086 conv=notrunc status=none
put "$SCRATCH/p7" 7
make_aged_ext "$SCRATCH/p8" 8 ext2
put "$SCRATCH/p8" 8

"$VDKIT" convert --sparsify --output-json "$disk" "$SCRATCH/mbr.raw" >"$SCRATCH/mbr.json"
"$VDKIT" convert --sparsify -O qcow2 "$disk" "$SCRATCH/mbr.qcow2" >"$SCRATCH/mbr.human"
qemu-img convert -O raw "$SCRATCH/mbr.qcow2" "$SCRATCH/mbr.qcow2.raw"
check "qcow2 and raw targets hold the same bytes" cmp -s "$SCRATCH/mbr.raw" "$SCRATCH/mbr.qcow2.raw"
rm -f "$SCRATCH/mbr.qcow2.raw"
check "the human summary names each file system" grep -q "partition 1 (ext4" "$SCRATCH/mbr.human"
check "the source is not the target's bytes (garbage left out)" bash -c "! cmp -s '$disk' '$SCRATCH/mbr.raw'"
for n in 1 5 8; do
  check "partition $n: same tree, e2fsck clean" same_tree "$disk" "$SCRATCH/mbr.raw" "${OFF[$n]}" "${LEN[$n]}" p$n
done
check "boot-loader gap and MBR kept byte for byte" same_region "$disk" "$SCRATCH/mbr.raw" 0 "${OFF[1]}"
check "partition table with its EBR chain reads the same" \
  cmp -s <(sfdisk -d "$disk" | sed "s|$disk||") <(sfdisk -d "$SCRATCH/mbr.raw" | sed "s|$SCRATCH/mbr.raw||")
# Each EBR sits in the sector before its logical partition's 1 MiB-aligned start, or at the extended start.
ext_start=$(($(part_field "$disk" 3 start) * 512))
ebrs_same=yes
for e in "$ext_start" $((OFF[6] - MB)) $((OFF[7] - MB)) $((OFF[8] - MB)); do
  same_region "$disk" "$SCRATCH/mbr.raw" "$e" 512 || ebrs_same=no
done
check "every EBR sector kept" [ "$ebrs_same" = yes ]
check "swap header page kept" same_region "$disk" "$SCRATCH/mbr.raw" "${OFF[2]}" 4096
check "swap UUID and label as blkid reads them" [ "$(blkid -p -o export -O "${OFF[2]}" "$SCRATCH/mbr.raw" |
  grep -E '^(UUID|LABEL)=' | sort | tr '\n' ' ')" = "LABEL=vdkitswap UUID=5ca1ab1e-0000-4000-8000-000000000002 " ]
check "swap space after the header left out" [ "$(volume_report "$SCRATCH/mbr.json" 2)" = \
  "True $((LEN[2] - 4096)) -" ]
for n in 5 6 7; do
  check "partition $n copied whole" same_region "$disk" "$SCRATCH/mbr.raw" "${OFF[$n]}" "${LEN[$n]}"
done
check "dirty journal reported" grep -q '"copied-whole": "the ext4 journal needs recovery' "$SCRATCH/mbr.json"
check "unknown content reported" grep -q '"copied-whole": "unknown content"' "$SCRATCH/mbr.json"
check "hibernation image reported" grep -q '"copied-whole": "the swap area holds a hibernation image"' \
  "$SCRATCH/mbr.json"
check "ext4 bytes left out are dumpe2fs's free blocks" [ "$(volume_report "$SCRATCH/mbr.json" 1)" = \
  "True $(dumpe2fs -h "$SCRATCH/p1" 2>/dev/null | awk -F: '/^Free blocks/{f=$2} /^Block size/{b=$2} END{print f*b}') -" ]
check "deleted files' data is in the source" grep -qa 'VDKIT-DELETED-p1-1$' "$disk"
check "deleted files' data is not in the target" bash -c "! grep -qaE 'VDKIT-DELETED-p(1|8)-' '$SCRATCH/mbr.raw'"
check "deleted files' data of the dirty file system is kept" grep -qa 'VDKIT-DELETED-p5-1$' "$SCRATCH/mbr.raw"
check "kept files' data is in the target" grep -qa 'VDKIT-KEPT-p1-2$' "$SCRATCH/mbr.raw"
# Size: the file systems' used blocks, plus what is kept whole, plus 5%.
used=$(($(used_bytes "$SCRATCH/p1") + $(used_bytes "$SCRATCH/p8") + 4096 + OFF[1] + LEN[5] + LEN[6] + LEN[7] + 4 * 4096))
got=$(($(du -B1 "$SCRATCH/mbr.raw" | cut -f1)))
got_q=$(stat -c %s "$SCRATCH/mbr.qcow2")
qemu-img convert -O raw "$disk" "$SCRATCH/peer.raw"
peer=$(($(du -B1 "$SCRATCH/peer.raw" | cut -f1)))
rm -f "$SCRATCH/peer.raw"
echo "sizes: used+kept $used, vdkit --sparsify raw $got, qcow2 $got_q, qemu-img convert raw $peer"
check "raw target within used + kept + 5% ($got <= $used * 1.05)" [ $((got * 100)) -le $((used * 105)) ]
check "qcow2 target within used + kept + 5% (+ metadata)" [ $((got_q * 100)) -le $((used * 105 + 100 * MB / 2)) ]
check "qemu-img convert copies the garbage (the comparison means something)" [ "$peer" -gt $((used * 2)) ]

# The NBD export with sparsify=true serves the same bytes, and reports the left-out ranges as holes.
nbdkit -U - "$PLUGIN" file="$disk" sparsify=true --run "nbdcopy \"\$uri\" '$SCRATCH/nbd.raw' &&
  nbdinfo --map \"\$uri\" >'$SCRATCH/nbd.map'"
check "sparsify=true export reads as the sparsified convert" cmp -s "$SCRATCH/nbd.raw" "$SCRATCH/mbr.raw"
holes=$(awk '$4 ~ /hole/ {s += $2} END {print s + 0}' "$SCRATCH/nbd.map")
skipped=$(json_get "$SCRATCH/mbr.json" sparsify.bytes-skipped)
check "block status reports at least the left-out bytes as holes ($holes >= $skipped)" [ "$holes" -ge "$skipped" ]
nbdkit -U - "$PLUGIN" file="$disk" sparsify=true partition=1 --run "nbdcopy \"\$uri\" '$SCRATCH/nbd.p1'"
check "sparsify=true partition=1 is partition 1 of the sparsified disk" cmp -s "$SCRATCH/nbd.p1" <(dd if="$SCRATCH/mbr.raw" bs=$MB skip=$((OFF[1] / MB)) \
  count=$((LEN[1] / MB)) status=none)
nbdkit -U - "$PLUGIN" file="$disk" sparsify=true --run "qemu-img convert -f raw -O raw \"\$uri\" '$SCRATCH/qi.raw'"
check "qemu-img convert from the sparsify=true export: same bytes" cmp -s "$SCRATCH/qi.raw" "$SCRATCH/mbr.raw"
qi=$(($(du -B1 "$SCRATCH/qi.raw" | cut -f1)))
check "qemu-img skips the holes on its own ($qi <= $used * 1.05)" [ $((qi * 100)) -le $((used * 105)) ]
rm -f "$SCRATCH/qi.raw"
"$VDKIT" serve --sparsify "$disk" --run "nbdcopy \"\$uri\" '$SCRATCH/serve.raw'" >/dev/null
check "vdkit serve --sparsify serves the same bytes" cmp -s "$SCRATCH/serve.raw" "$SCRATCH/mbr.raw"
rm -f "$SCRATCH/serve.raw"
check "sparsify=true with writable=overlay is refused" bash -c "! nbdkit -U - '$PLUGIN' file='$disk' sparsify=true \
  writable=overlay --run true 2>/dev/null"
rm -f "$SCRATCH/nbd.raw" "$SCRATCH/nbd.p1" "$SCRATCH/mbr.qcow2"

# ---------------------------------------------------------------- GPT: both tables, a BIOS boot partition
disk=$SCRATCH/gpt.img
head -c $((48 * MB)) /dev/urandom >"$disk"
printf 'label: gpt\nsize=1M, type=21686148-6449-6E6F-744E-656564454649\ntype=L\n' | sfdisk -q "$disk"
o2=$(($(part_field "$disk" 2 start) * 512))
l2=$(($(part_field "$disk" 2 size) * 512))
make_aged_ext "$SCRATCH/g2" $((l2 / MB)) ext4
dd if="$SCRATCH/g2" of="$disk" bs=$MB seek=$((o2 / MB)) conv=notrunc status=none
"$VDKIT" convert --sparsify --output-json "$disk" "$SCRATCH/gpt.raw" >"$SCRATCH/gpt.json"
check "GPT: same tree, e2fsck clean" same_tree "$disk" "$SCRATCH/gpt.raw" "$o2" "$l2" g2
check "GPT: protective MBR, primary GPT and BIOS boot partition kept" same_region "$disk" "$SCRATCH/gpt.raw" 0 "$o2"
check "GPT: backup entries and header kept" same_region "$disk" "$SCRATCH/gpt.raw" $((48 * MB - 33 * 512)) $((33 * 512))
check "GPT: sfdisk verifies the target's table" sfdisk --verify "$SCRATCH/gpt.raw"
check "GPT: the space between the partition's end and the backup is left out" \
  [ "$(json_get "$SCRATCH/gpt.json" sparsify.bytes-skipped-outside-partitions)" = $((48 * MB - o2 - l2 - 33 * 512)) ]
rm -f "$SCRATCH/gpt.raw"

# ---------------------------------------------------------------- a whole-disk ext4 with bigalloc (16 KiB clusters)
make_aged_ext "$SCRATCH/big.img" 48 ext4 -O bigalloc -C 16384
"$VDKIT" convert --sparsify --output-json "$SCRATCH/big.img" "$SCRATCH/big.raw" >"$SCRATCH/big.json"
check "bigalloc: same tree, e2fsck clean" same_tree "$SCRATCH/big.img" "$SCRATCH/big.raw" 0 $((48 * MB)) big
check "bigalloc: bytes left out are dumpe2fs's free clusters" [ "$(volume_report "$SCRATCH/big.json" 0)" = \
  "True $(dumpe2fs -h "$SCRATCH/big.img" 2>/dev/null | awk -F: '/^Free blocks/{f=$2} /^Block size/{b=$2} END{print f*b}') -" ]
check "bigalloc: deleted files' data is not in the target" bash -c "! grep -qa 'VDKIT-DELETED-big' '$SCRATCH/big.raw'"
rm -f "$SCRATCH/big.raw" "$SCRATCH/big.img"

# ---------------------------------------------------------------- a whole-disk file system, and --fixup first
for g in canfar sl5; do
  "$VDKIT_SRC/scripts/make-guest" "$g" "$SCRATCH/guests" >/dev/null
  src=$SCRATCH/guests/$g.vmdk
  "$VDKIT" convert --fixup "$src" "$SCRATCH/$g.fixed.raw" >/dev/null
  "$VDKIT" convert --fixup --sparsify --output-json "$src" "$SCRATCH/$g.sparse.raw" >"$SCRATCH/$g.json"
  while read -r num off size type; do
    case $type in ext*) ;; *) continue ;; esac
    check "$g partition $num: --fixup --sparsify has the --fixup tree, e2fsck clean" \
      same_tree "$SCRATCH/$g.fixed.raw" "$SCRATCH/$g.sparse.raw" "$off" "$size" "$g$num"
  done <"$SCRATCH/guests/$g.parts"
  check "$g: the fixups were applied" grep -q '"fixup"' "$SCRATCH/$g.json"
  check "$g: --sparsify left bytes out" [ "$(json_get "$SCRATCH/$g.json" sparsify.bytes-skipped)" -gt 0 ]
  rm -f "$SCRATCH/$g.fixed.raw" "$SCRATCH/$g.sparse.raw"
done

# XFS and Btrfs through their readers' maps: aged through the kernel (files written, some deleted, a subvolume and
# zstd on Btrfs), converted with --sparsify; the tree is the source's (mounted read-only without log replay;
# XFS needs nouuid for the second mount of one UUID), and xfs_repair -n / btrfs check find the copy clean.
if command -v mkfs.xfs >/dev/null && command -v mkfs.btrfs >/dev/null; then
  mkdir -p "$SCRATCH/fsm" "$SCRATCH/fsa" "$SCRATCH/fsb"
  truncate -s 400M "$SCRATCH/x.img"
  TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f "$SCRATCH/x.img"
  truncate -s 300M "$SCRATCH/b.img"
  mkfs.btrfs -q -f "$SCRATCH/b.img" >/dev/null 2>&1
  age_fs() {  # IMAGE MOUNT-OPTIONS
    mount -o "loop,$2" "$1" "$SCRATCH/fsm" || return 1
    for i in $(seq 1 40); do head -c $((i * 37000)) /dev/urandom >"$SCRATCH/fsm/f$i"; done
    mkdir -p "$SCRATCH/fsm/etc"
    echo keep >"$SCRATCH/fsm/etc/fstab"
    chown 1234:5678 "$SCRATCH/fsm/f2"
    rm -f "$SCRATCH"/fsm/f1*
    sync
    umount "$SCRATCH/fsm"
  }
  age_fs "$SCRATCH/x.img" defaults
  age_fs "$SCRATCH/b.img" compress=zstd
  fs_same() {  # SOURCE TARGET OPTS-FOR-TARGET
    mount -o loop,ro,"$4" "$1" "$SCRATCH/fsa" || return 1
    if ! mount -o loop,ro,"$4$3" "$2" "$SCRATCH/fsb"; then umount "$SCRATCH/fsa"; return 1; fi
    local rc=0
    python3 "$COMPARE" "$SCRATCH/fsa" "$SCRATCH/fsb" >&2 || rc=1
    umount "$SCRATCH/fsa" "$SCRATCH/fsb"
    return $rc
  }
  for t in x b; do
    "$VDKIT" convert --sparsify --output-json "$SCRATCH/$t.img" "$SCRATCH/$t.out" >"$SCRATCH/$t.json"
    check "$t: the map of its reader was used and left something out" python3 - "$SCRATCH/$t.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["sparsify"]["volumes"][0]
assert v["mapped"] and v["bytes-skipped"] > 100 << 20, v
PY
  done
  check "xfs: same tree after --sparsify" fs_same "$SCRATCH/x.img" "$SCRATCH/x.out" ",nouuid" norecovery
  check "xfs: xfs_repair -n finds the copy clean" bash -c "xfs_repair -n \"$SCRATCH/x.out\" >/dev/null 2>&1"
  check "btrfs: same tree after --sparsify" fs_same "$SCRATCH/b.img" "$SCRATCH/b.out" "" rescue=nologreplay
  check "btrfs: btrfs check finds the copy clean" bash -c "btrfs check \"$SCRATCH/b.out\" >/dev/null 2>&1"
  rm -f "$SCRATCH/x.img" "$SCRATCH/x.out" "$SCRATCH/b.img" "$SCRATCH/b.out"
fi

# Usage errors.
check "--sparsify on standard input is a usage error" bash -c "'$VDKIT' convert --sparsify - '$SCRATCH/x.raw' \
  </dev/null 2>/dev/null; [ \$? = 2 ]"
finish
