#!/usr/bin/env bash
# The nbdkit plugin on every matrix image: nbdinfo's size and map, nbdcopy's bytes and qemu-img's copy through NBD
# all agree with qemu-img and `vdkit map` reading the source directly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
for tool in nbdkit nbdinfo nbdcopy qemu-img python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -f "$PLUGIN" ] || skip "the plugin is not built ($PLUGIN)"
make_matrix


# map_types: reads `nbdinfo --map --json` or `vdkit map --output=json` and prints merged "start length type" lines,
# type 0 = data, 2 = zero, 3 = hole (NBD's base:allocation flags).
map_types() {
  python3 -c '
import json, sys
runs = []
for e in json.load(sys.stdin):
    if "offset" in e:
        start, t = e["offset"], e["type"]
    else:
        start = e["start"]
        t = 0 if e["data"] else (2 if e["present"] else 3)
    if runs and runs[-1][2] == t and runs[-1][0] + runs[-1][1] == start:
        runs[-1][1] += e["length"]
    else:
        runs.append([start, e["length"], t])
for r in runs:
    print(*r)
'
}

while IFS=$'\t' read -r name path fmt; do
  ref=$SCRATCH/ref.raw
  qemu_raw "$path" "$ref"
  before=$(sum_of "$path")
  if ! start_server "$SCRATCH/server.log" file="$path"; then
    fail "$name: nbdkit did not start: $(cat "$SCRATCH/server.log")"
    continue
  fi

  want_size=$(stat -c %s "$ref")
  check "$name: nbdinfo --size is $want_size" [ "$(nbdinfo --size "$URI")" = "$want_size" ]

  desc=$(nbdinfo --json "$URI" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0].get("description",""))')
  check "$name: the export description names the format ($desc)" [ "${desc%%[ ,]*}" = "$fmt" ]

  nbdinfo --map --json "$URI" | map_types > "$SCRATCH/nbd.map"
  "$VDKIT" map --output=json "$path" | map_types > "$SCRATCH/vdkit.map"
  if [ -s "$SCRATCH/nbd.map" ] && cmp -s "$SCRATCH/nbd.map" "$SCRATCH/vdkit.map"; then
    pass "$name: nbdinfo --map agrees with vdkit map ($(wc -l < "$SCRATCH/nbd.map") runs)"
  else
    fail "$name: nbdinfo --map differs from vdkit map"
    diff "$SCRATCH/nbd.map" "$SCRATCH/vdkit.map" | head -5 >&2 || true
  fi

  rm -f "$SCRATCH/copy.raw"
  if nbdcopy "$URI" "$SCRATCH/copy.raw" && cmp -s "$ref" "$SCRATCH/copy.raw"; then
    pass "$name: nbdcopy of the export equals qemu-img convert -O raw"
  else
    fail "$name: nbdcopy of the export differs from qemu-img convert -O raw"
  fi

  rm -f "$SCRATCH/out.qcow2"
  if qemu-img convert -f raw "$URI" -O qcow2 "$SCRATCH/out.qcow2" &&
     qemu-img compare -q "$SCRATCH/out.qcow2" "$path"; then
    pass "$name: qemu-img convert through NBD to qcow2 compares identical to the source"
  else
    fail "$name: qemu-img convert through NBD to qcow2 differs from the source"
  fi

  stop_server || true
  check "$name: the source is unchanged" [ "$(sum_of "$path")" = "$before" ]
  rm -f "$ref" "$SCRATCH/copy.raw" "$SCRATCH/out.qcow2"
done < "$MATRIX/manifest.tsv"
finish
