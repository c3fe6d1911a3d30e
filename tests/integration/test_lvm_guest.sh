#!/usr/bin/env bash
# Guests with root on LVM, made by lvm2 without activation. Ubuntu's layout on two disks: disk 0 has /boot (ext4)
# and a PV, disk 1 a data partition and a PV, and ubuntu-vg/ubuntu-lv spans both PVs. fstab names root by
# /dev/mapper/ubuntu--vg-ubuntu--lv and /boot, /data by Xen names (/dev/xvda1, /dev/xvdb1). Checks: inspect finds
# root on the LV through both disks; fixup maps each Xen name through its own disk and keeps the LVM names;
# convert --fixup writes one target per disk into a folder, the sources untouched, the LV's ext4 clean; one disk
# alone names the missing PV; a failed multi-disk convert leaves no target; --fixup --sparsify of both disks keeps the
# LV's files and ext4 clean. RHEL's names on one disk (rhel/root,
# rhel/swap; root=, resume= and rd.lvm.lv= in BLS entries and grubenv): only /dev/xvda1 and the console change.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/journal_lib.sh"
source "$(dirname "$0")/lvm_lib.sh"
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
command -v lvcreate >/dev/null || skip "lvm2 is not installed"
[ -x "$VDKIT" ] || skip "vdkit is not built at $VDKIT"
export PATH=$PATH:/sbin:/usr/sbin
trap 'detach_leftover_loops; cleanup_scratch' EXIT
BOOT_UUID=b007b007-0000-4000-8000-000000000001
DATA_UUID=da7ada7a-0000-4000-8000-000000000002
ROOT_UUID=2004bbbb-0000-4000-8000-0000000000aa

# The trees: Ubuntu 20.04's root with /boot split off.
t=$SCRATCH/tree
mkdir -p "$t/root" "$t/boot" "$t/data"
cp -a "$VDKIT_SRC/tests/guests/ubuntu2004/root/." "$t/root/"
mv "$t/root/boot/"* "$t/boot/"
echo "data of disk 1" >"$t/data/readme"
printf '%s\n' '/dev/mapper/ubuntu--vg-ubuntu--lv / ext4 defaults 0 1' '/dev/xvda1 /boot ext4 defaults 0 2' \
  '/dev/xvdb1 /data ext4 defaults,nofail 0 2' >"$t/root/etc/fstab"
sed -i 's|root=[^ ]*|root=/dev/mapper/ubuntu--vg-ubuntu--lv rd.lvm.lv=ubuntu-vg/ubuntu-lv resume=/dev/ubuntu-vg/swap|g' \
  "$t/boot/grub/grub.cfg"

# Two disks: MBR, partition 1 (20 MiB / 16 MiB ext4) and partition 2 (a PV) each.
for i in 0 1; do
  truncate -s 64M "$SCRATCH/d$i.img"
  printf 'label: dos\n2048,%s,83\n,,8e\n' $((i == 0 ? 40960 : 32768)) | sfdisk -q "$SCRATCH/d$i.img"
done
mkfs.ext4 -q -F -U "$BOOT_UUID" -E root_owner=0:0 -d "$t/boot" "$SCRATCH/boot.fs" 20M
mkfs.ext4 -q -F -U "$DATA_UUID" -E root_owner=0:0 -d "$t/data" "$SCRATCH/data.fs" 16M
dd if="$SCRATCH/boot.fs" of="$SCRATCH/d0.img" bs=1M seek=1 conv=notrunc status=none
dd if="$SCRATCH/data.fs" of="$SCRATCH/d1.img" bs=1M seek=1 conv=notrunc status=none
attach P0 -o $((21 << 20)) --sizelimit $((43 << 20)) "$SCRATCH/d0.img"
attach P1 -o $((17 << 20)) --sizelimit $((47 << 20)) "$SCRATCH/d1.img"
DEVICES=("$P0" "$P1")
q pvcreate "$P0" "$P1"
q vgcreate -s 1m ubuntu-vg "$P0" "$P1"
q lvcreate -an -Zn -l 100%FREE -n ubuntu-lv ubuntu-vg
# The root file system, written into the LV at the PV offsets lvm2 reports.
lv_bytes=$(lv_size ubuntu-vg/ubuntu-lv)
mkfs.ext4 -q -F -U "$ROOT_UUID" -E root_owner=0:0 -d "$t/root" "$SCRATCH/root.fs" "$((lv_bytes / 1024))k"
# A snapshot of the running guest: j0/j1, whose newest fstab (noatime on /data) is only in the root LV's journal.
cp "$SCRATCH/root.fs" "$SCRATCH/jold.fs"
cp "$SCRATCH/root.fs" "$SCRATCH/jnew.fs"
sed 's|/data ext4 defaults,nofail|/data ext4 defaults,noatime,nofail|' "$t/root/etc/fstab" >"$SCRATCH/fstab.new"
debugfs -w -R "rm /etc/fstab" "$SCRATCH/jnew.fs" >/dev/null 2>&1
debugfs -w -R "write $SCRATCH/fstab.new /etc/fstab" "$SCRATCH/jnew.fs" >/dev/null 2>&1
check "the new fstab is logged in the root file system's journal" journalize "$SCRATCH/jold.fs" "$SCRATCH/jnew.fs"
put_lv ubuntu-vg ubuntu-lv "$SCRATCH/jold.fs" >/dev/null
sync
cp "$SCRATCH/d0.img" "$SCRATCH/j0.img"
cp "$SCRATCH/d1.img" "$SCRATCH/j1.img"
check "root LV spans both disks (2 segments)" test "$(put_lv ubuntu-vg ubuntu-lv "$SCRATCH/root.fs")" = 2
detach_all
src_sum=$(sum_of "$SCRATCH/d0.img" "$SCRATCH/d1.img")

# inspect: root on the LV, /boot on disk 0, /data on disk 1.
"$VDKIT" inspect --output=json "$SCRATCH/d0.img" "$SCRATCH/d1.img" >"$SCRATCH/inspect.json"
check "inspect: / is ubuntu-vg/ubuntu-lv, /boot disk 0 p1, /data disk 1 p1" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
m = {f.get("mountpoint"): f for f in j["filesystems"] if f.get("mountpoint")}
assert m["/"].get("lv") == "ubuntu-vg/ubuntu-lv", m
assert (m["/boot"]["disk"], m["/boot"]["partition"]) == (0, 1), m
assert (m["/data"]["disk"], m["/data"]["partition"]) == (1, 1), m
assert j["volume-groups"][0]["name"] == "ubuntu-vg"' "$SCRATCH/inspect.json"

# One disk alone: the LV's second PV is missing, and said so.
out=$("$VDKIT" inspect "$SCRATCH/d0.img" 2>&1) && fail "inspect of one disk found a root" ||
  check "one disk: missing PV named" grep -q "of VG ubuntu-vg is not among the given disks" <<<"$out"

# fixup --dry-run: each Xen name through its own disk; LVM names kept.
"$VDKIT" fixup --dry-run --output-json "$SCRATCH/d0.img" "$SCRATCH/d1.img" >"$SCRATCH/plan.json"
check "fixup maps /dev/xvda1 and /dev/xvdb1 through their disks, keeps /dev/mapper" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
diff = "".join(c.get("diff", "") for c in p["changes"] if c["path"] == "/etc/fstab")
assert "+UUID=" + sys.argv[2] + " /boot" in diff, diff
assert "+UUID=" + sys.argv[3] + " /data" in diff, diff
assert "/dev/mapper/ubuntu--vg-ubuntu--lv" not in "".join(l for l in diff.splitlines(True) if l[:1] in "+-"), diff
assert not any(w["code"] == "more-than-one-disk" for w in p["warnings"]), p["warnings"]
assert any(w["code"] == "lvm-name-kept" and "ubuntu-vg/ubuntu-lv" in w["message"] for w in p["warnings"]), p["warnings"]' \
  "$SCRATCH/plan.json" "$BOOT_UUID" "$DATA_UUID"

# convert --fixup: one target per disk in a folder; sources untouched; the LV's ext4 clean and fixed.
out=$SCRATCH/out
check "convert --fixup of two disks" "$VDKIT" convert --fixup -O raw "$SCRATCH/d0.img" "$SCRATCH/d1.img" "$out"
check "targets named after the sources" test -f "$out/d0.raw" -a -f "$out/d1.raw"
check "sources unchanged" test "$(sum_of "$SCRATCH/d0.img" "$SCRATCH/d1.img")" = "$src_sum"
"$VDKIT" convert --lv ubuntu-vg/ubuntu-lv --disk "$out/d1.raw" "$out/d0.raw" "$SCRATCH/lv.raw" >/dev/null
check "the LV's ext4 is clean after the fixups" e2fsck -fn "$SCRATCH/lv.raw"
check "fstab in the target" bash -c "debugfs -R 'cat /etc/fstab' '$SCRATCH/lv.raw' 2>/dev/null | grep -q '^UUID=$BOOT_UUID /boot'"
dd if="$out/d0.raw" of="$SCRATCH/boot-out.fs" bs=1M skip=1 count=20 status=none
check "root=, rd.lvm.lv= and resume= stay in grub.cfg" bash -c "debugfs -R 'cat /grub/grub.cfg' '$SCRATCH/boot-out.fs' 2>/dev/null |
  grep -q 'root=/dev/mapper/ubuntu--vg-ubuntu--lv rd.lvm.lv=ubuntu-vg/ubuntu-lv resume=/dev/ubuntu-vg/swap'"
check "a second fixup of the targets changes nothing" bash -c \
  "'$VDKIT' fixup --dry-run --output-json '$out/d0.raw' '$out/d1.raw' | python3 -c 'import json,sys; p=json.load(sys.stdin); assert not p[\"changes\"], p[\"changes\"]'"
# vdkit batch fixes and maps the two disks together, as convert does: the VG spans them, /data is /dev/xvdb1 on
# disk 1, and the root LV's free blocks on both disks are left out.
printf 'name,disks,output,format,fixup,sparsify\nubu,%s;%s,%s,raw,yes,yes\n' "$SCRATCH/d0.img" "$SCRATCH/d1.img" \
  "$SCRATCH/bout" >"$SCRATCH/plan.csv"
check "batch of the two-disk guest with fixups and sparsify" "$VDKIT" batch "$SCRATCH/plan.csv"
"$VDKIT" batch --dry-run --output-json "$SCRATCH/plan.csv" >"$SCRATCH/bdry.json" 2>/dev/null || true
check "batch --dry-run maps the root LV's free blocks on both disks" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["guests"][0]["disks"]
assert all(x.get("sparsify-bytes-left-out", 0) > 0 for x in d), d' "$SCRATCH/bdry.json"
check "batch targets: a second fixup changes nothing" bash -c \
  "'$VDKIT' fixup --dry-run --output-json '$SCRATCH/bout/d0.raw' '$SCRATCH/bout/d1.raw' | python3 -c 'import json,sys; p=json.load(sys.stdin); assert not p[\"changes\"], p[\"changes\"]'"
"$VDKIT" convert --lv ubuntu-vg/ubuntu-lv --disk "$SCRATCH/bout/d1.raw" "$SCRATCH/bout/d0.raw" "$SCRATCH/blv.raw" >/dev/null
check "batch: the LV's ext4 is clean and its fstab names /data by UUID" bash -c "e2fsck -fn '$SCRATCH/blv.raw' >/dev/null &&
  debugfs -R 'cat /etc/fstab' '$SCRATCH/blv.raw' 2>/dev/null | grep -q '^UUID=$DATA_UUID /data'"
check "sources unchanged after batch" test "$(sum_of "$SCRATCH/d0.img" "$SCRATCH/d1.img")" = "$src_sum"
# The snapshot: the journal on the LV (spanning both disks) is replayed into the overlay, never into the sources.
j_sum=$(sum_of "$SCRATCH/j0.img" "$SCRATCH/j1.img")
"$VDKIT" inspect --output=json "$SCRATCH/j0.img" "$SCRATCH/j1.img" >"$SCRATCH/jinspect.json"
check "inspect replays the LV's journal and reads the new fstab" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
lvj = [x for x in j["journals"] if x.get("lv") == "ubuntu-vg/ubuntu-lv"]
assert lvj and "replayed" in lvj[0], j["journals"]
assert any("noatime" in (e.get("options") or "") for e in j["fstab"]), j["fstab"]' "$SCRATCH/jinspect.json"
check "convert --fixup of the snapshot" "$VDKIT" convert --fixup -O raw "$SCRATCH/j0.img" "$SCRATCH/j1.img" "$SCRATCH/jout"
check "snapshot sources unchanged" test "$(sum_of "$SCRATCH/j0.img" "$SCRATCH/j1.img")" = "$j_sum"
"$VDKIT" convert --lv ubuntu-vg/ubuntu-lv --disk "$SCRATCH/jout/j1.raw" "$SCRATCH/jout/j0.raw" "$SCRATCH/jlv.raw" >/dev/null
check "the LV's ext4 in the output is clean, its journal recovered" bash -c "e2fsck -fn '$SCRATCH/jlv.raw' >/dev/null &&
  ! dumpe2fs -h '$SCRATCH/jlv.raw' 2>/dev/null | grep -q needs_recovery"
check "the output's fstab is the journal's, fixed" bash -c "debugfs -R 'cat /etc/fstab' '$SCRATCH/jlv.raw' 2>/dev/null |
  grep -q '^UUID=$DATA_UUID /data ext4 defaults,noatime,nofail'"
# convert --fixup --sparsify of both disks: the map is the fixed guest's, with the VG read across both disks.
outs=$SCRATCH/out-sparse
"$VDKIT" convert --fixup --sparsify --output-json -O raw "$SCRATCH/d0.img" "$SCRATCH/d1.img" "$outs" >"$SCRATCH/sparse.json"
check "--sparsify maps ubuntu-vg/ubuntu-lv as ext4 on both disks" python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["targets"]
lvs = [l for d in t for v in d["sparsify"]["volumes"] for l in v.get("lvs", []) if l["lv"] == "ubuntu-vg/ubuntu-lv"]
assert len(lvs) == 2 and all(l["mapped"] and l["type"] == "ext4" for l in lvs), lvs' "$SCRATCH/sparse.json"
"$VDKIT" convert --lv ubuntu-vg/ubuntu-lv --disk "$outs/d1.raw" "$outs/d0.raw" "$SCRATCH/lv-sparse.raw" >/dev/null
check "--fixup --sparsify: the LV's ext4 is clean" e2fsck -fn "$SCRATCH/lv-sparse.raw"
mkdir -p "$SCRATCH/tree-plain" "$SCRATCH/tree-sparse"
debugfs -R "rdump / $SCRATCH/tree-plain" "$SCRATCH/lv.raw" >/dev/null 2>&1
debugfs -R "rdump / $SCRATCH/tree-sparse" "$SCRATCH/lv-sparse.raw" >/dev/null 2>&1
check "--fixup --sparsify: the LV's files are the --fixup ones" bash -c \
  "test -s '$SCRATCH/tree-sparse/etc/fstab' && diff -r '$SCRATCH/tree-plain' '$SCRATCH/tree-sparse'"
rm -rf "$outs" "$SCRATCH/lv-sparse.raw" "$SCRATCH/tree-plain" "$SCRATCH/tree-sparse"
# A failed multi-disk convert leaves no target (the second source does not exist).
"$VDKIT" convert --fixup -O raw "$SCRATCH/d0.img" "$SCRATCH/nope.img" "$SCRATCH/out2" 2>/dev/null &&
  fail "convert with a missing disk succeeded" || check "failed convert leaves no target" test ! -e "$SCRATCH/out2"

# --- RHEL-style names on one disk: /boot on xvda1, VG "rhel" with LVs root and swap; BLS entries and grubenv
# name root=/dev/mapper/rhel-root, resume=/dev/mapper/rhel-swap and rd.lvm.lv=, which all stay.
r=$SCRATCH/rhel
mkdir -p "$r/root" "$r/boot"
cp -a "$VDKIT_SRC/tests/guests/rhel8/root/." "$r/root/"
cp -a "$VDKIT_SRC/tests/guests/rhel8/boot/." "$r/boot/"
printf '%s\n' '/dev/mapper/rhel-root / ext4 defaults 1 1' '/dev/xvda1 /boot ext4 defaults 1 2' \
  '/dev/mapper/rhel-swap none swap defaults 0 0' >"$r/root/etc/fstab"
lvm_opts='root=/dev/mapper/rhel-root ro resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap'
sed -i "s|root=/dev/xvda2 ro|$lvm_opts|" "$r/boot/grub2/grubenv" "$r/boot/loader/entries/"*.conf
truncate -s 64M "$SCRATCH/rhel.img"
printf 'label: dos\n2048,16384,83\n,,8e\n' | sfdisk -q "$SCRATCH/rhel.img"
mkfs.ext4 -q -F -U 8b00b000-0000-4000-8000-0000000000b1 -E root_owner=0:0 -d "$r/boot" "$SCRATCH/rboot.fs" 8M
dd if="$SCRATCH/rboot.fs" of="$SCRATCH/rhel.img" bs=1M seek=1 conv=notrunc status=none
attach R -o $((9 << 20)) --sizelimit $((55 << 20)) "$SCRATCH/rhel.img"
DEVICES=("$R")
q pvcreate "$R"
q vgcreate -s 1m rhel "$R"
q lvcreate -an -Zn -l 8 -n swap rhel
q lvcreate -an -Zn -l 100%FREE -n root rhel
mkfs.ext4 -q -F -E root_owner=0:0 -d "$r/root" "$SCRATCH/rroot.fs" "$(($(lv_size rhel/root) / 1024))k"
truncate -s 8M "$SCRATCH/rswap.fs"
mkswap -q "$SCRATCH/rswap.fs" >/dev/null
put_lv rhel root "$SCRATCH/rroot.fs" >/dev/null
put_lv rhel swap "$SCRATCH/rswap.fs" >/dev/null
detach_all
"$VDKIT" inspect --output=json "$SCRATCH/rhel.img" >"$SCRATCH/rinspect.json"
check "rhel: / on rhel/root, swap on rhel/swap" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
by = {f.get("lv"): f for f in j["filesystems"] if f.get("lv")}
assert by["rhel/root"].get("mountpoint") == "/", by
assert by["rhel/swap"]["type"] == "swap" and by["rhel/swap"].get("mountpoint") == "swap", by' "$SCRATCH/rinspect.json"
"$VDKIT" fixup --dry-run --output-json "$SCRATCH/rhel.img" >"$SCRATCH/rplan.json"
check "rhel: xvda1 mapped, every LVM name on kernel lines and in fstab kept" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
changed = "".join(l for c in p["changes"] for l in c.get("diff", "").splitlines(True) if l[:1] in "+-" and l[:3] not in ("+++", "---"))
assert "+UUID=8b00b000-0000-4000-8000-0000000000b1 /boot" in changed, changed
for name in ("rhel-root", "rhel-swap", "rd.lvm.lv=rhel/root"):
    minus = [l for l in changed.splitlines() if l.startswith("-") and name in l]
    plus = [l for l in changed.splitlines() if l.startswith("+") and name in l]
    assert len(minus) == len(plus), (name, changed)  # a line that changed (console=) keeps the LVM names
assert "console=ttyS0" in changed, changed
kept = [w["message"] for w in p["warnings"] if w["code"] == "lvm-name-kept"]
assert any("rhel/root" in m for m in kept) and any("rhel/swap" in m for m in kept), p["warnings"]' "$SCRATCH/rplan.json"
finish
