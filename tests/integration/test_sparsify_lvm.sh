#!/usr/bin/env bash
# convert --sparsify on a guest whose LVM2 VG spans two disks (a partition of one, the whole of the other), made by
# lvm2's own tools on loop devices (never activated): ext4 LVs (linear, spanning both disks, striped over both) with
# deleted files, a swap LV, an LV of unknown content, free extents, all over random garbage. Checked: each LV read back
# through `vdkit convert --lv` from the sparsified disks is e2fsck -fn clean with the same files as the tree kept, the
# swap header and the unknown LV byte for byte the source's, the PV labels and metadata areas untouched, pvs/vgs/lvs
# read the output's VG as the source's, the output allocation smaller than a plain convert's by what the report says
# was left out; one disk alone (the other PV missing) keeps the spanning and striped LVs whole; the plugin's lv= with
# sparsify=true serves what convert wrote. Needs root (loop devices). About 20 s on the loaded 2-core dev machine.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lvm_lib.sh"
export PATH=$PATH:/sbin:/usr/sbin
for t in mkfs.ext4 mkswap debugfs e2fsck sfdisk lvcreate nbdkit nbdcopy blkid qemu-img; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
[ "$(id -u)" = 0 ] || skip "loop devices need root"
[ -x "$VDKIT" ] || skip "vdkit is not built at $VDKIT"
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
MB=1048576
cleanup() {
  detach_leftover_loops
  cleanup_scratch
}
trap cleanup EXIT
# mkext NAME MB: an ext4 image over random bytes (its free blocks hold garbage), with files in $SCRATCH/tree-NAME of
# which the keep/ ones stay and del/ ones are deleted (their blocks freed, their bytes left).
mkext() {
  local img=$SCRATCH/$1.img tree=$SCRATCH/tree-$1
  mkdir -p "$tree/keep/sub" "$tree/del"
  head -c $(($2 * MB / 4)) /dev/urandom >"$tree/keep/a.bin"
  head -c 12345 /dev/urandom >"$tree/keep/sub/b.bin"
  echo "$1" >"$tree/keep/sub/name.txt"
  head -c $(($2 * MB / 3)) /dev/urandom >"$tree/del/big.bin"
  head -c $(($2 * MB)) /dev/urandom >"$img"
  mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0 -d "$tree" "$img" >/dev/null
  debugfs -w -R "rm /del/big.bin" "$img" >/dev/null 2>&1
  rm -r "$tree/del"
  mkdir "$tree/del"
  e2fsck -fn "$img" >/dev/null 2>&1 || fail "mkext $1: the source file system is not clean"
}
fsck_clean() { e2fsck -fn "$1" >"$SCRATCH/fsck.out" 2>&1 || { cat "$SCRATCH/fsck.out" >&2; return 1; }; }
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# lv_report JSON TARGET VG/LV: "mapped bytes-skipped type reason" of the LV in target TARGET's PV volume.
lv_report() {
  python3 - "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["targets"][int(sys.argv[2])]["sparsify"] if "targets" in j else j["sparsify"]
for v in s["volumes"]:
    for l in v.get("lvs", []):
        if l["lv"] == sys.argv[3]:
            print(l["mapped"], l["bytes-skipped"], l["type"] or "-", l.get("copied-whole", "-"))
PY
}

# --- Disk A: MBR, partition 1 (100 MiB) a PV, the rest outside every partition. Disk B: a whole-disk PV. Both
# random to the last byte first, so every byte sparsify leaves out differs from the zeros it becomes.
A=$SCRATCH/guest-a.raw
B=$SCRATCH/guest-b.raw
head -c $((128 * MB)) /dev/urandom >"$A"
head -c $((64 * MB)) /dev/urandom >"$B"
printf 'label: dos\nstart=2048, size=204800, type=8e\n' | sfdisk -q "$A"
P1_OFF=$((2048 * 512))
attach PA -o $P1_OFF --sizelimit $((100 * MB)) "$A"
attach PB "$B"
DEVICES=("$PA" "$PB")
q pvcreate "$PA" "$PB"
q vgcreate -s 1m vgs "$PA" "$PB"
q lvcreate -an -Zn -l 40 -n root vgs "$PA:0-39"
q lvcreate -an -Zn -l 8 -n swap vgs "$PA:40-47"
q lvcreate -an -Zn -l 60 -n span vgs "$PA:48-87" "$PB:0-19"
q lvcreate -an -Zn -i 2 -I 64k -l 16 -n str vgs "$PA:88-95" "$PB:20-27"
q lvcreate -an -Zn -l 4 -n blob vgs "$PB:28-31"
mkext root 40
mkext span 60
mkext str 16
head -c $((8 * MB)) /dev/urandom >"$SCRATCH/swap.img"
mkswap -q -L lvswap "$SCRATCH/swap.img" >/dev/null
put_lv vgs root "$SCRATCH/root.img" >/dev/null
put_lv vgs span "$SCRATCH/span.img" >/dev/null
put_lv vgs str "$SCRATCH/str.img" >/dev/null
put_lv vgs swap "$SCRATCH/swap.img" >/dev/null
PE_A=$(lvmc pvs --noheadings --units b --nosuffix -o pe_start "$PA" 2>/dev/null | tr -d ' ')
PE_B=$(lvmc pvs --noheadings --units b --nosuffix -o pe_start "$PB" 2>/dev/null | tr -d ' ')
lvmc lvs --noheadings -o lv_name,seg_pe_ranges --segments vgs 2>/dev/null | sed "s#$PA#A#g; s#$PB#B#g" | sort \
  >"$SCRATCH/lvs.want"
lvmc vgs --noheadings --units b --nosuffix -o vg_name,pv_count,lv_count,vg_free vgs 2>/dev/null >"$SCRATCH/vgs.want"
detach_all
DEVICES=()
sha256sum "$A" "$B" >"$SCRATCH/sources.sum"

# --- Both disks: one VG read across them.
"$VDKIT" convert --sparsify --output-json "$A" "$B" "$SCRATCH/out" >"$SCRATCH/out.json"
"$VDKIT" convert "$A" "$B" "$SCRATCH/plain" >/dev/null
OA=$SCRATCH/out/guest-a.raw
OB=$SCRATCH/out/guest-b.raw
check "the sources are unchanged" sha256sum -c --quiet "$SCRATCH/sources.sum"
for lv in root span str; do
  r=$(lv_report "$SCRATCH/out.json" 0 vgs/$lv)
  check "disk A reports LV vgs/$lv mapped as ext4 ($r)" test "$(echo "$r" | cut -d' ' -f1,3)" = "True ext4"
done
check "disk A reports LV vgs/swap mapped as swap" test "$(lv_report "$SCRATCH/out.json" 0 vgs/swap | cut -d' ' -f1,3)" = \
  "True swap"
for lv in span str; do
  r=$(lv_report "$SCRATCH/out.json" 1 vgs/$lv)
  check "disk B reports its part of LV vgs/$lv mapped ($r)" test "$(echo "$r" | cut -d' ' -f1)" = True
  check "disk B left out some of vgs/$lv" test "$(echo "$r" | cut -d' ' -f2)" -gt 0
done
check "LV vgs/blob (random bytes) is copied whole: unknown content" \
  test "$(lv_report "$SCRATCH/out.json" 1 vgs/blob)" = "False 0 - unknown content"
check "disk A reports its VG and 3 MiB of free extents" test "$(json "$SCRATCH/out.json" \
  'j["targets"][0]["sparsify"]["volumes"][0]["vg"] + " " + str(j["targets"][0]["sparsify"]["volumes"][0]["bytes-skipped-free-extents"])')" = \
  "vgs $((3 * MB))"
FREE_B=$(($(json "$SCRATCH/out.json" 'j["targets"][1]["sparsify"]["volumes"][0]["bytes-skipped-free-extents"]')))
check "disk B's free extents are what vgs reports free minus disk A's ($FREE_B)" \
  test "$FREE_B" -eq $(($(awk '{print $4}' "$SCRATCH/vgs.want") - 3 * MB))

# Each LV read back from the sparsified disks: clean, the files kept, nothing deleted.
for lv in root span str; do
  rm -f "$SCRATCH/lv.raw"
  "$VDKIT" convert --lv vgs/$lv --disk "$OB" "$OA" "$SCRATCH/lv.raw" >/dev/null
  check "vgs/$lv from the output is e2fsck -fn clean" fsck_clean "$SCRATCH/lv.raw"
  rm -rf "$SCRATCH/dump" && mkdir "$SCRATCH/dump"
  debugfs -R "rdump /keep /del $SCRATCH/dump" "$SCRATCH/lv.raw" >/dev/null 2>&1
  check "vgs/$lv from the output has the files kept, nothing of the deleted ones" \
    diff -r "$SCRATCH/tree-$lv" "$SCRATCH/dump"
  # The LV's bytes differ from the source's only where its file system says free.
  "$VDKIT" convert --lv vgs/$lv --disk "$B" "$A" "$SCRATCH/lv.src" >/dev/null
  check "vgs/$lv lost its deleted file's bytes (not the same as the source LV)" bash -c \
    "! cmp -s '$SCRATCH/lv.raw' '$SCRATCH/lv.src'"
  rm -f "$SCRATCH/lv.src"
done
rm -f "$SCRATCH/lv.raw"
"$VDKIT" convert --lv vgs/swap --disk "$OB" "$OA" "$SCRATCH/swap.out" >/dev/null
check "swap LV: header page kept byte for byte" cmp -n 4096 "$SCRATCH/swap.out" "$SCRATCH/swap.img"
check "swap LV: the rest left out (zeros)" cmp -s -i 4096:0 "$SCRATCH/swap.out" <(head -c $((8 * MB - 4096)) /dev/zero)
check "swap LV: blkid still reads label lvswap" test "$(blkid -p -o value -s LABEL "$SCRATCH/swap.out")" = lvswap
"$VDKIT" convert --lv vgs/blob --disk "$OB" "$OA" "$SCRATCH/blob.out" >/dev/null
"$VDKIT" convert --lv vgs/blob --disk "$B" "$A" "$SCRATCH/blob.src" >/dev/null
check "unknown LV: byte for byte the source's" cmp "$SCRATCH/blob.out" "$SCRATCH/blob.src"

# LVM's own areas: the label and metadata before the first extent, and past the last one, on both PVs.
check "PV on disk A: label and metadata area kept" \
  cmp <(head -c $((P1_OFF + PE_A)) "$A") <(head -c $((P1_OFF + PE_A)) "$OA")
check "PV on disk B: label and metadata area kept" cmp -n "$PE_B" "$B" "$OB"
check "outside the partitions of disk A: left out" \
  cmp -s -i $((P1_OFF + 100 * MB)):0 "$OA" <(head -c $((28 * MB - P1_OFF)) /dev/zero)
attach XA -o $P1_OFF --sizelimit $((100 * MB)) "$OA"
attach XB "$OB"
DEVICES=("$XA" "$XB")
lvmc lvs --noheadings -o lv_name,seg_pe_ranges --segments vgs 2>/dev/null | sed "s#$XA#A#g; s#$XB#B#g" | sort \
  >"$SCRATCH/lvs.got"
lvmc vgs --noheadings --units b --nosuffix -o vg_name,pv_count,lv_count,vg_free vgs 2>/dev/null >"$SCRATCH/vgs.got"
check "lvs reads the output's LVs and segments as the source's" diff "$SCRATCH/lvs.want" "$SCRATCH/lvs.got"
check "vgs reads the output's VG as the source's" diff "$SCRATCH/vgs.want" "$SCRATCH/vgs.got"
check "lvs found 5 LVs on the output" test "$(wc -l <"$SCRATCH/lvs.got")" -ge 5
detach_all
DEVICES=()

# Allocation: smaller than a plain convert's by what the report says was left out (the plain copy has no zero
# block to skip: every byte is random or data).
alloc() { du -B1 "$@" | awk '{s += $1} END {print s}'; }
SKIPPED=$(($(json "$SCRATCH/out.json" 'sum(t["sparsify"]["bytes-skipped"] for t in j["targets"])')))
GOT=$(alloc "$OA" "$OB")
PLAIN=$(alloc "$SCRATCH/plain/guest-a.raw" "$SCRATCH/plain/guest-b.raw")
echo "sizes: plain $PLAIN, --sparsify $GOT, reported left out $SKIPPED"
check "the saving is what was left out (within 2%)" python3 -c "
import sys; p, g, s = $PLAIN, $GOT, $SKIPPED
sys.exit(0 if abs((p - g) - s) <= 0.02 * s else 1)"
# The left-out total covers the deleted files, the free extents, swap and outside the partition.
DELETED=$(((40 + 60 + 16) * MB / 3))
check "left out at least the deleted files + free extents + swap + outside the partition" \
  test "$SKIPPED" -ge $((DELETED + 3 * MB + FREE_B + 7 * MB + 27 * MB))

# The human summary: one per target, each PV with its VG and each LV on it.
"$VDKIT" convert --sparsify -O qcow2 "$A" "$B" "$SCRATCH/human" >"$SCRATCH/human.txt"
check "human summary: vgs/span listed on both disks" test "$(grep -c '^  LV vgs/span (ext4, 60 MiB): ' "$SCRATCH/human.txt")" = 2
check "human summary: the PV lines name the VG" test "$(grep -c '(VG vgs: ' "$SCRATCH/human.txt")" = 2
for d in a b; do
  qemu-img convert -O raw "$SCRATCH/human/guest-$d.qcow2" "$SCRATCH/human/guest-$d.raw"
  check "qcow2 target of disk $d holds the raw target's bytes" cmp "$SCRATCH/human/guest-$d.raw" "$SCRATCH/out/guest-$d.raw"
done
rm -rf "$SCRATCH/human"

# --- Disk A alone: the PV on disk B is missing. Its LVs wholly on disk A are still mapped; the others are kept.
"$VDKIT" convert --sparsify --output-json "$A" "$SCRATCH/alone.raw" >"$SCRATCH/alone.json"
check "A alone: vgs/root still mapped" test "$(lv_report "$SCRATCH/alone.json" 0 vgs/root | cut -d' ' -f1)" = True
for lv in span str; do
  r=$(lv_report "$SCRATCH/alone.json" 0 vgs/$lv)
  check "A alone: vgs/$lv copied whole, its other PV missing ($r)" \
    bash -c "[[ '$r' == 'False 0 - '*'is not among the given disks'* ]]"
done
"$VDKIT" convert --lv vgs/span --disk "$B" "$SCRATCH/alone.raw" "$SCRATCH/span.alone" >/dev/null
"$VDKIT" convert --lv vgs/span --disk "$B" "$A" "$SCRATCH/span.src" >/dev/null
check "A alone: vgs/span byte for byte the source's" cmp "$SCRATCH/span.alone" "$SCRATCH/span.src"
rm -f "$SCRATCH/span.alone" "$SCRATCH/span.src" "$SCRATCH/alone.raw"

# --- The plugin's lv= with sparsify=true, and convert --lv --sparsify: the LV as convert left it in the disks.
"$VDKIT" convert --lv vgs/span --disk "$OB" "$OA" "$SCRATCH/span.want" >/dev/null
nbdkit -U - "$PLUGIN" file="$A" lv=vgs/span disk="$B" sparsify=true --run "nbdcopy \"\$uri\" '$SCRATCH/span.nbd'"
check "plugin lv=vgs/span sparsify=true serves the LV of the sparsified disks" cmp "$SCRATCH/span.nbd" "$SCRATCH/span.want"
"$VDKIT" convert --sparsify --lv vgs/span --disk "$B" "$A" "$SCRATCH/span.lv" >/dev/null
check "convert --sparsify --lv vgs/span writes the same" cmp "$SCRATCH/span.lv" "$SCRATCH/span.want"
check "sources still unchanged" sha256sum -c --quiet "$SCRATCH/sources.sum"
finish
