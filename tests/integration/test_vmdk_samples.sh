#!/usr/bin/env bash
# Real VMDK files from other tools (../shared/samples, see SOURCES.md) read as qemu-img reads them; the ESXi seSparse
# extent reads as its source says (16 MiB of 'a', then zeros); the truncated VMDK is refused with a clear error.
source "$(dirname "$0")/lib.sh"
S=$VDKIT_SAMPLES
[ -d "$S" ] || skip "no sample folder at $S"

for f in govmdk-vmdk-monolith.img govmdk-vmdk-streamoptimized.img plaso-ext2.vmdk; do
  [ -f "$S/$f" ] || { fail "$f is missing from $S"; continue; }
  before=$(sum_of "$S/$f")
  qemu_raw "$S/$f" "$SCRATCH/ref.raw"
  for io in uring sync; do
    if VDKIT_IO=$io "$READCHECK" --threads 2 "$S/$f" "$SCRATCH/out.raw" && cmp -s "$SCRATCH/ref.raw" "$SCRATCH/out.raw"; then
      pass "$f reads as qemu-img reads it ($io)"
    else
      fail "$f reads differently from qemu-img ($io)"
    fi
  done
  want=$(qemu-img info --output=json "$S/$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  got=$("$VDKIT" info --output=json "$S/$f" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["virtual-size"])')
  check "$f: virtual size $want as qemu-img says" [ "$got" = "$want" ]
  check "$f was not modified" [ "$(sum_of "$S/$f")" = "$before" ]
done

# The truncated VMDK: qemu-img refuses it; so must we, with exit 1 and a message naming the problem.
inv=$S/govmdk-vmdk-invalid.img
if qemu-img info "$inv" >/dev/null 2>&1; then fail "qemu-img unexpectedly opens $inv"; fi
set +e
msg=$("$VDKIT" info "$inv" 2>&1 >/dev/null)
rc=$?
set -e
check "govmdk-vmdk-invalid.img refused with exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "the refusal names the empty embedded descriptor: $msg" grep -q "embedded descriptor.*empty" <<<"$msg"
if "$READCHECK" "$inv" "$SCRATCH/out.raw" 2>/dev/null; then fail "readcheck opened the invalid VMDK"; else pass "readcheck refuses the invalid VMDK"; fi

# The ESXi seSparse extent, with a descriptor written here (qemu-img reads seSparse too: compare with it).
mkdir -p "$SCRATCH/se"
gunzip -c "$S/esxi-sesparse.vmdk.gz" > "$SCRATCH/se/disk-sesparse.vmdk"
cat > "$SCRATCH/se/disk.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="seSparse"

# Extent description
RW 1048576 SESPARSE "disk-sesparse.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
EOF
for io in uring sync; do
  rm -f "$SCRATCH/out.raw"
  if VDKIT_IO=$io "$READCHECK" --threads 2 --random-chunks 3 "$SCRATCH/se/disk.vmdk" "$SCRATCH/out.raw"; then
    a=$(head -c 16777216 "$SCRATCH/out.raw" | tr -d 'a' | wc -c)
    rest=$(tail -c +16777217 "$SCRATCH/out.raw" | tr -d '\0' | wc -c)
    size=$(stat -c %s "$SCRATCH/out.raw")
    check "seSparse ($io): 16 MiB of 'a' then zeros over 512 MiB ($a stray, $rest non-zero, $size bytes)" \
      [ "$a" -eq 0 -a "$rest" -eq 0 -a "$size" -eq 536870912 ]
  else
    fail "seSparse ($io) could not be read"
  fi
done
if qemu-img info "$SCRATCH/se/disk.vmdk" >/dev/null 2>&1; then
  qemu_raw "$SCRATCH/se/disk.vmdk" "$SCRATCH/ref.raw"
  check "seSparse reads as qemu-img reads it" cmp -s "$SCRATCH/ref.raw" "$SCRATCH/out.raw"
fi
map=$("$VDKIT" map --output=json "$SCRATCH/se/disk.vmdk")
first=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print(m[0]["start"], m[0]["length"], m[0]["data"])' "$map")
check "seSparse map starts with 16 MiB of data ($first)" [ "$first" = "0 16777216 True" ]
sub=$("$VDKIT" info --output=json "$SCRATCH/se/disk.vmdk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subformat"])')
check "seSparse info says subformat seSparse" [ "$sub" = "seSparse" ]
finish
