# Helpers for the LVM tests: loop devices remembered for cleanup, lvm2 run against those devices only (never the
# host's /etc/lvm or device-mapper, never activating anything), and file-system images written into LVs where lvm2's
# own report puts their extents.
export LVM_SUPPRESS_FD_WARNINGS=1
LOOPS=()
# attach VAR LOSETUP-ARGS...: sets VAR to a new loop device, remembered for cleanup (not in a subshell, so the
# list survives).
attach() {
  local var=$1 l
  shift
  l=$(losetup -f --show "$@")
  LOOPS+=("$l")
  printf -v "$var" %s "$l"
}
detach_all() {
  local l
  for l in "${LOOPS[@]}"; do losetup -d "$l"; done
  LOOPS=()
}
# For exit traps: detaches what is left, quietly.
detach_leftover_loops() {
  local l
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
}
DEVICES=()
# lvmc CMD ARGS...: lvm2 with only the loop devices in DEVICES in view.
lvmc() {
  local cmd=$1 devs=() d
  shift
  for d in "${DEVICES[@]}"; do devs+=(--devices "$d"); done
  "$cmd" "${devs[@]}" --driverloaded n --config 'backup{backup=0 archive=0}' "$@"
}
q() { lvmc "$@" -q >/dev/null 2>"$SCRATCH/lvm.err" || { cat "$SCRATCH/lvm.err" >&2; return 1; }; }
# lv_size VG/LV: the LV's size in bytes.
lv_size() { lvmc lvs --noheadings --units b --nosuffix -o lv_size "$1" 2>/dev/null | tr -d ' '; }
# put_lv VG LV FILE: writes FILE over the LV's extents on the attached PVs, where lvm2's report puts them (linear and
# striped segments); prints the number of segments.
put_lv() {
  lvmc lvs --reportformat json --units b --nosuffix -o seg_start_pe,seg_pe_ranges,stripes,stripe_size \
    --segments "$1/$2" >"$SCRATCH/segs.json" 2>/dev/null
  lvmc pvs --reportformat json --units b --nosuffix -o pv_name,pe_start >"$SCRATCH/pvs.json" 2>/dev/null
  lvmc vgs --reportformat json --units b --nosuffix -o vg_extent_size "$1" >"$SCRATCH/vg.json" 2>/dev/null
  python3 - "$SCRATCH" "$3" <<'PY'
import json, sys
scratch, src = sys.argv[1], sys.argv[2]
segs = json.load(open(scratch + "/segs.json"))["report"][0]["seg"]
pe_start = {p["pv_name"]: int(p["pe_start"]) for p in json.load(open(scratch + "/pvs.json"))["report"][0]["pv"]}
ext = int(json.load(open(scratch + "/vg.json"))["report"][0]["vg"][0]["vg_extent_size"])
data = open(src, "rb").read()
for s in segs:
    per = [(r.split(":")[0], int(r.split(":")[1].split("-")[0]), int(r.split(":")[1].split("-")[1]))
           for r in s["seg_pe_ranges"].split()]
    n, start = len(per), int(s["seg_start_pe"]) * ext
    length = sum(b - a + 1 for _, a, b in per) * ext
    chunk = int(s["stripe_size"]) if n > 1 else length
    for k in range(length // chunk):
        dev, a, _ = per[k % n]
        with open(dev, "r+b") as f:
            f.seek(pe_start[dev] + a * ext + (k // n) * chunk)
            f.write(data[start + k * chunk:start + (k + 1) * chunk])
print(len(segs))
PY
}
