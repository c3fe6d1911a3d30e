#!/usr/bin/env bash
# LVM2 volume groups made by lvm2 itself (never activated: --driverloaded n, no device-mapper needed) on loop
# devices: linear, striped over 2 and 3 PVs, an LV in out-of-order segments, a VG over two partitions, a VG over
# three disk images, metadata that wrapped around its circular buffer, two copies with different seqno, thin and raid
# LVs (vgcfgrestore of a hand-written metadata file) refused, and a missing PV. Each LV's bytes are written at the PV
# offsets lvm2's own report gives (lvs seg_pe_ranges, pvs pe_start), then read back through `vdkit convert --lv`,
# the nbdkit plugin (nbdcopy) and the raw FUSE view. `vdkit info` is compared with pvs/lvs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.sh"
source "$(dirname "$0")/lvm_lib.sh"
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
command -v lvcreate >/dev/null || skip "lvm2 is not installed"
command -v nbdcopy >/dev/null || skip "nbdcopy (libnbd-bin) is not installed"
[ -x "$VDKIT" ] || skip "vdkit is not built at $VDKIT"
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
cleanup_lvm() {
  detach_leftover_loops
  cleanup_fuse
}
trap cleanup_lvm EXIT
# attach_part IMG N: partition N of IMG as a loop device of its own (no udev here to make /dev/loopXpN nodes; the
# PV's bytes are the same either way).
attach_part() {
  local start size
  read -r start size < <(sfdisk --json "$2" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions'][int(sys.argv[1]) - 1]; print(p['start'] * 512, p['size'] * 512)" "$3")
  attach "$1" -o "$start" --sizelimit "$size" "$2"
}

# fill_lvs VG: writes random bytes to every striped/linear LV of VG at the PV offsets lvm2 reports, keeping each LV's
# expected content in $SCRATCH/want/VG-LV.
fill_lvs() {
  local vg=$1
  mkdir -p "$SCRATCH/want"
  lvmc lvs --reportformat json --units b --nosuffix -o lv_name,seg_start_pe,seg_pe_ranges,stripes,stripe_size,segtype \
    --segments "$vg" >"$SCRATCH/segs.json" 2>/dev/null
  lvmc pvs --reportformat json --units b --nosuffix -o pv_name,pe_start >"$SCRATCH/pvs.json" 2>/dev/null
  lvmc vgs --reportformat json --units b --nosuffix -o vg_extent_size "$vg" >"$SCRATCH/vg.json" 2>/dev/null
  python3 - "$vg" "$SCRATCH" <<'PY'
import json, os, sys
vg, scratch = sys.argv[1], sys.argv[2]
segs = json.load(open(scratch + "/segs.json"))["report"][0]["seg"]
pe_start = {p["pv_name"]: int(p["pe_start"]) for p in json.load(open(scratch + "/pvs.json"))["report"][0]["pv"]}
ext = int(json.load(open(scratch + "/vg.json"))["report"][0]["vg"][0]["vg_extent_size"])
lvs = {}
for s in segs:
    if s["segtype"] not in ("linear", "striped"):
        continue
    lvs.setdefault(s["lv_name"], []).append(s)
for lv, ss in lvs.items():
    size = sum(sum(int(r.split(":")[1].split("-")[1]) - int(r.split(":")[1].split("-")[0]) + 1
                   for r in s["seg_pe_ranges"].split()) for s in ss) * ext
    data = bytearray(os.urandom(size))
    for s in ss:
        ranges = s["seg_pe_ranges"].split()
        n = len(ranges)
        start = int(s["seg_start_pe"]) * ext
        per = [(r.split(":")[0], int(r.split(":")[1].split("-")[0]), int(r.split(":")[1].split("-")[1])) for r in ranges]
        length = sum(b - a + 1 for _, a, b in per) * ext
        chunk = int(s["stripe_size"]) if n > 1 else length
        for k in range(length // chunk):
            dev, a, _ = per[k % n]
            off = pe_start[dev] + a * ext + (k // n) * chunk
            with open(dev, "r+b") as f:
                f.seek(off)
                f.write(data[start + k * chunk:start + (k + 1) * chunk])
    name = vg.replace("-", "--") + "-" + lv.replace("-", "--")
    open(scratch + "/want/" + name, "wb").write(data)
PY
}

# check_lv VG LV DISK [OTHER DISKS...]: the LV's bytes through convert --lv, the plugin and the raw FUSE view.
check_lv() {
  local vg=$1 lv=$2 disk=$3; shift 3
  local name=${vg//-/--}-${lv//-/--} extra=() plug=() d
  for d in "$@"; do extra+=(--disk "$d"); plug+=("disk=$d"); done
  rm -f "$SCRATCH/got.raw"
  check "convert --lv $vg/$lv" bash -c "'$VDKIT' convert --lv $vg/$lv ${extra[*]} '$disk' '$SCRATCH/got.raw' >/dev/null &&
    cmp '$SCRATCH/got.raw' '$SCRATCH/want/$name'"
  rm -f "$SCRATCH/nbd.raw"
  check "plugin lv=$vg/$lv (nbdcopy)" bash -c "nbdkit -U - '$PLUGIN' file='$disk' lv=$vg/$lv ${plug[*]} \
    --run 'nbdcopy \"\$uri\" $SCRATCH/nbd.raw' && cmp '$SCRATCH/nbd.raw' '$SCRATCH/want/$name'"
  local mp=$SCRATCH/mnt-$name
  if mount_vdkit --raw "${extra[@]}" "$disk" "$mp"; then
    check "raw FUSE view $name" cmp "$mp/$name" "$SCRATCH/want/$name"
    umount_vdkit "$mp" || fail "umount $mp"
  else
    fail "mount --raw $disk"
  fi
}

info_json() { "$VDKIT" info --output=json "$@"; }
# lv_field JSON VG LV FIELD
lv_field() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
for v in j.get("volume-groups", []):
  if v["name"]==sys.argv[2]:
    for l in v["lvs"]:
      if l["name"]==sys.argv[3]: print(l.get(sys.argv[4], ""))' "$@"
}

# --- A VG over two partitions of one disk: linear across both, striped 2, out-of-order segments.
truncate -s 96M "$SCRATCH/parts.img"
printf 'label: gpt\n,40M\n,40M\n' | sfdisk -q "$SCRATCH/parts.img"
attach_part P1 "$SCRATCH/parts.img" 1; attach_part P2 "$SCRATCH/parts.img" 2
DEVICES=("$P1" "$P2")
q pvcreate "$P1" "$P2"
q vgcreate -s 1m vgparts "$P1" "$P2"
q lvcreate -an -Zn -l 30 -n lin vgparts "$P1"
q lvextend -l +8 vgparts/lin "$P2"
q lvcreate -an -Zn -i 2 -I 64k -l 10 -n str2 vgparts
q lvcreate -an -Zn -l 2 -n ooo vgparts "$P2:20-21"
q lvextend -l +3 vgparts/ooo "$P2:14-16"
q lvextend -l +2 vgparts/ooo "$P1:35-36"
fill_lvs vgparts
lvmc pvs --noheadings --units b --nosuffix -o pv_uuid,pv_free 2>/dev/null >"$SCRATCH/pvfree.txt"
detach_all
info_json "$SCRATCH/parts.img" >"$SCRATCH/parts.json"
check "info: unused bytes of each PV equal pvs pv_free" python3 -c '
import json, sys
free = dict(l.split() for l in open(sys.argv[2]) if l.strip())
pvs = json.load(open(sys.argv[1]))["volume-groups"][0]["pvs"]
assert len(pvs) == 2 and all(p["unused-bytes"] == int(free[p["uuid"]]) for p in pvs), (pvs, free)' \
  "$SCRATCH/parts.json" "$SCRATCH/pvfree.txt"
check "info: vgparts/str2 is striped" test "$(lv_field "$SCRATCH/parts.json" vgparts str2 type)" = striped
check "info: vgparts/lin spans two PVs" test "$(lv_field "$SCRATCH/parts.json" vgparts lin pvs | tr -cd ',' | wc -c)" = 1
for lv in lin str2 ooo; do check_lv vgparts $lv "$SCRATCH/parts.img"; done

# --- A VG over three whole disk images: striped 3, a linear LV across two disks; metadata copies on each.
for i in 1 2 3; do truncate -s 48M "$SCRATCH/d$i.img"; done
attach D1 "$SCRATCH/d1.img"; attach D2 "$SCRATCH/d2.img"; attach D3 "$SCRATCH/d3.img"
DEVICES=("$D1" "$D2" "$D3")
q pvcreate "$D1" "$D2" "$D3"
q vgcreate -s 1m vgdisks "$D1" "$D2" "$D3"
q lvcreate -an -Zn -i 3 -I 16k -l 30 -n str3 vgdisks
q lvcreate -an -Zn -l 40 -n span vgdisks "$D1" "$D2"
fill_lvs vgdisks
# Two copies with different seqno: d1's metadata area is put back to before the last change (still a valid copy).
dd if="$D1" of="$SCRATCH/d1-mda.old" bs=1M count=1 status=none
q lvcreate -an -Zn -l 3 -n late vgdisks "$D3"
fill_lvs vgdisks
seq_new=$(lvmc vgs --noheadings -o vg_seqno vgdisks 2>/dev/null | tr -d ' ')
dd if="$SCRATCH/d1-mda.old" of="$D1" bs=1M count=1 conv=notrunc status=none
detach_all
info_json "$SCRATCH/d3.img" >"$SCRATCH/d3.json"
check "info: highest seqno wins ($seq_new)" python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
assert j["volume-groups"][0]["seqno"] == int(sys.argv[2]), j["volume-groups"][0]["seqno"]' "$SCRATCH/d3.json" "$seq_new"
check "info: a missing PV is named" python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
l=[l for l in j["volume-groups"][0]["lvs"] if l["name"]=="str3"][0]
assert "is not among the given disks" in l["refused"], l' "$SCRATCH/d3.json"
for lv in str3 span late; do check_lv vgdisks $lv "$SCRATCH/d1.img" "$SCRATCH/d2.img" "$SCRATCH/d3.img"; done
# The copy on d1 alone is the old one: the LV made last is not there, and the LV on d1 and d2 misses d2.
out=$("$VDKIT" map --lv vgdisks/span "$SCRATCH/d1.img" 2>&1) && fail "map of an LV with a missing PV succeeded" ||
  check "missing PV refused: $out" bash -c "grep -q 'PV .* of VG vgdisks is not among the given disks' <<<'$out'"
out=$("$VDKIT" map --lv vgdisks/late "$SCRATCH/d1.img" 2>&1) && fail "old copy won over newer" ||
  check "older copy alone has no LV late: $out" bash -c "grep -q 'has no LV late' <<<'$out'"

# --- Metadata that wrapped around a small circular buffer.
truncate -s 16M "$SCRATCH/wrap.img"
attach W "$SCRATCH/wrap.img"
DEVICES=("$W")
q pvcreate --metadatasize 32k --dataalignment 64k "$W"
q vgcreate -s 1m vgwrap "$W"
q lvcreate -an -Zn -l 4 -n small vgwrap
# Each change writes the text after the last copy; change tags until the current copy straddles the ring's end.
straddles() {
  python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(1 << 20)
off, ln = struct.unpack('<QQ', d[4096 + 40:4096 + 56])
area = struct.unpack('<Q', d[4096 + 32:4096 + 40])[0]
sys.exit(0 if off + ln > area else 1)
PY
}
for i in $(seq 1 200); do
  q vgchange --addtag "t$i" vgwrap
  straddles "$W" && break
done
check "metadata wrapped in the ring (after $i changes)" straddles "$W"
fill_lvs vgwrap
detach_all
check_lv vgwrap small "$SCRATCH/wrap.img"

# --- Thin pool and raid1 LVs, restored from a hand-written metadata file, are refused by name and type.
truncate -s 32M "$SCRATCH/thin.img"; truncate -s 32M "$SCRATCH/thin2.img"
attach T "$SCRATCH/thin.img"; attach T2 "$SCRATCH/thin2.img"
DEVICES=("$T" "$T2")
q pvcreate "$T" "$T2"
q vgcreate -s 1m vgthin "$T" "$T2"
q lvcreate -an -Zn -l 4 -n plain vgthin "$T"
lvmc vgcfgbackup -q -f "$SCRATCH/vgthin.vg" vgthin >/dev/null 2>&1
python3 - "$SCRATCH/vgthin.vg" <<'PY'
import re, sys
p = sys.argv[1]
t = open(p).read()
import random, string
def uuid():
    c = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(32))
    return "-".join([c[:6], c[6:10], c[10:14], c[14:18], c[18:22], c[22:26], c[26:]])
def lv(name, status, segs):
    return ('%s {\nid = "%s"\nstatus = [%s]\nflags = []\nsegment_count = 1\n\n%s}\n'
            % (name, uuid(), status, segs))
def striped(pv, start, count):
    return ('segment1 {\nstart_extent = 0\nextent_count = %d\n\ntype = "striped"\nstripe_count = 1\n\nstripes = [\n"%s", %d\n]\n}\n'
            % (count, pv, start))
rw = '"READ", "WRITE"'
new = (lv("pool", rw + ', "VISIBLE"', 'segment1 {\nstart_extent = 0\nextent_count = 4\n\ntype = "thin-pool"\n'
          'metadata = "pool_tmeta"\npool = "pool_tdata"\ntransaction_id = 1\nchunk_size = 128\ndiscards = "passdown"\n'
          'zero_new_blocks = 0\n}\n')
       + lv("pool_tdata", rw, striped("pv0", 4, 4)) + lv("pool_tmeta", rw, striped("pv1", 0, 1))
       + lv("thin1", rw + ', "VISIBLE"', 'segment1 {\nstart_extent = 0\nextent_count = 8\n\ntype = "thin"\n'
            'thin_pool = "pool"\ntransaction_id = 0\ndevice_id = 1\n}\n')
       + lv("mirr", rw + ', "VISIBLE"', 'segment1 {\nstart_extent = 0\nextent_count = 2\n\ntype = "raid1"\n'
            'device_count = 2\nregion_size = 1024\n\nraids = [\n"mirr_rmeta_0", "mirr_rimage_0",\n'
            '"mirr_rmeta_1", "mirr_rimage_1"\n]\n}\n')
       + lv("mirr_rmeta_0", rw, striped("pv0", 8, 1)) + lv("mirr_rimage_0", rw, striped("pv0", 9, 2))
       + lv("mirr_rmeta_1", rw, striped("pv1", 1, 1)) + lv("mirr_rimage_1", rw, striped("pv1", 2, 2)))
t = t.replace("logical_volumes {\n", "logical_volumes {\n" + new, 1)
open(p, "w").write(t)
PY
if lvmc vgcfgrestore -q --force -f "$SCRATCH/vgthin.vg" vgthin >/dev/null 2>"$SCRATCH/lvm.err"; then
  lvs_out=$(lvmc lvs --noheadings -o lv_name,segtype vgthin 2>/dev/null | tr -s ' ')
  check "lvs shows thin-pool/thin/raid1 ($lvs_out)" bash -c "grep -q 'pool thin-pool' <<<'$lvs_out' && grep -q 'thin1 thin' <<<'$lvs_out' && grep -q 'mirr raid1' <<<'$lvs_out'"
  fill_lvs vgthin
  detach_all
  for spec in "pool:thin-pool" "thin1:thin" "mirr:raid1"; do
    lv=${spec%%:*}; ty=${spec#*:}
    out=$("$VDKIT" map --lv vgthin/$lv --disk "$SCRATCH/thin2.img" "$SCRATCH/thin.img" 2>&1) && fail "vgthin/$lv opened" ||
      check "vgthin/$lv refused as $ty" bash -c "grep -q 'LV vgthin/$lv has type $ty' <<<'$out'"
  done
  check_lv vgthin plain "$SCRATCH/thin.img" "$SCRATCH/thin2.img"
else
  cat "$SCRATCH/lvm.err" >&2
  fail "vgcfgrestore of the hand-written thin/raid metadata"
  detach_all
fi

# --- The source disks were only read.
check "no loop device left" test -z "$(losetup -a | grep "$SCRATCH")"
finish
