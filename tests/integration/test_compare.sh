#!/usr/bin/env bash
# vdkit compare across formats agrees with qemu-img compare: identical pairs exit 0, different pairs exit 1 with the
# same "Content mismatch at offset N!" line; size mismatches follow qemu-img's rules; errors exit 3, usage 2.
source "$(dirname "$0")/lib.sh"
make_matrix
src() { grep -P "^$1\t" "$MATRIX/manifest.tsv" | cut -f2; }
base=$(src raw)
# agree A B: vdkit compare and qemu-img compare give the same exit status and the same first line.
agree() {
  local rv=0 rq=0 ov oq
  ov=$("$VDKIT" compare "$1" "$2" 2>/dev/null) || rv=$?
  oq=$(qemu-img compare "$1" "$2" 2>/dev/null) || rq=$?
  if [ "$rv" = "$rq" ] && [ "$ov" = "$oq" ]; then return 0; fi
  echo "vdkit: $rv '$ov'; qemu-img: $rq '$oq'" >&2
  return 1
}
# Equal pairs across formats.
for name in qcow2-zlib qcow2-zstd vmdk-streamOptimized vmdk-monolithicFlat qcow2-chain3; do
  p=$(src "$name")
  [ -n "$p" ] || continue
  check "compare raw vs $name (equal) agrees with qemu-img" agree "$base" "$p"
done
# Different pairs: one byte changed in data, in a hole, and in the last sector.
for off in 5 $((3 << 20)) $(((2 << 20) + 70000)) $(((24 << 20) - 1)); do
  cp --sparse=always "$base" "$SCRATCH/b.raw"
  printf '\x01' | dd of="$SCRATCH/b.raw" bs=1 seek="$off" conv=notrunc status=none
  qemu-img convert -O qcow2 -c "$SCRATCH/b.raw" "$SCRATCH/b.qcow2"
  check "byte changed at $off: raw vs raw agrees with qemu-img" agree "$base" "$SCRATCH/b.raw"
  check "byte changed at $off: vmdk vs compressed qcow2 agrees with qemu-img" \
    agree "$(src vmdk-monolithicSparse)" "$SCRATCH/b.qcow2"
  rm -f "$SCRATCH/b.qcow2"
done
# Sizes differ: extra zeros are equal (unless --strict), extra data is a mismatch.
cp --sparse=always "$base" "$SCRATCH/long.raw"
truncate -s 25M "$SCRATCH/long.raw"
check "longer by zeros agrees with qemu-img" agree "$base" "$SCRATCH/long.raw"
rc=0; "$VDKIT" compare -s "$base" "$SCRATCH/long.raw" >/dev/null 2>&1 || rc=$?
check "--strict: sizes differ, exit 1 (got $rc)" [ "$rc" -eq 1 ]
printf 'x' | dd of="$SCRATCH/long.raw" bs=1 seek=$(((24 << 20) + 4096)) conv=notrunc status=none
check "longer with data agrees with qemu-img" agree "$SCRATCH/long.raw" "$base"
# NBD: an nbdkit export of base.raw equals the streamOptimized VMDK.
check "nbd export vs vmdk compare equal" nbdkit -U - file "$base" --run "'$VDKIT' compare -q \"\$uri\" '$(src vmdk-streamOptimized)'"
# JSON.
j=$("$VDKIT" compare --output-json "$base" "$SCRATCH/long.raw" || true)
check "--output-json names the mismatch offset" python3 -c "import json,sys; j=json.loads(sys.argv[1]); assert j['identical'] is False and j['mismatch-offset'] == $(((24 << 20) + 4096))" "$j"
# Errors and usage.
rc=0; "$VDKIT" compare "$base" "$SCRATCH/missing" >/dev/null 2>&1 || rc=$?
check "missing image: exit 3 (got $rc)" [ "$rc" -eq 3 ]
rc=0; "$VDKIT" compare "$base" >/dev/null 2>&1 || rc=$?
check "one image only: usage, exit 2 (got $rc)" [ "$rc" -eq 2 ]
finish
