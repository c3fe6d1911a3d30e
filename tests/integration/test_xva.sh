#!/usr/bin/env bash
# XVA: exports written by tests/tools/xvagen.py (the `xe vm-export` layout: ova.xml, Ref:NN/ chunks with SHA-1 or
# xxh64 checksums, zero chunks left out) from raw disks, converted by `vdkit convert VM.xva OUTDIR/` from a file
# and from standard input, plain, gzip and zstd, and checked byte for byte against the raw disks they came from;
# random access (info, map, nbdkit with the plugin, compare, mount) to the uncompressed file, disk 0 and, with
# --xva-disk 1 / xva-disk=1, disk 1; inspect of a guest whose root is on disk 1; then hostile exports: a
# checksum mismatch, a chunk without checksum and a truncated tar each stop the run and leave no target.
# Run time: about 10 seconds.
source "$(dirname "$0")/lib.sh"
command -v xxhsum >/dev/null || skip "xxhsum (Debian package xxhash) is not installed"
XVAGEN="python3 $VDKIT_SRC/tests/tools/xvagen.py"
cd "$SCRATCH"

# Disk 0: data, a zero run longer than a chunk (left out of the export), data; 8 MiB. Disk 1: 3000320 bytes
# (not a whole number of chunks; whole sectors, as qemu-img reads qcow2 sizes in sectors), the second half zeros.
head -c 3M /dev/urandom >d0.raw
truncate -s 8M d0.raw
printf 'late data' | dd of=d0.raw bs=1 seek=$((6 << 20)) conv=notrunc status=none
head -c 1500000 /dev/urandom >d1.raw
truncate -s 3000320 d1.raw

same_disks() {  # FOLDER EXT: the two targets are the raw disks
  local d0=$1/web01-disk0.$2 d1=$1/web01-disk1.$2
  if [ "$2" = qcow2 ]; then
    qemu-img convert -O raw "$d0" "$1/c0.raw" && qemu-img convert -O raw "$d1" "$1/c1.raw" || return 1
    d0=$1/c0.raw d1=$1/c1.raw
  fi
  cmp -s "$d0" d0.raw && cmp -s "$d1" d1.raw
}

for sum in sha1 xxhash; do
  flag=
  [ $sum = xxhash ] && flag=--xxhash
  for comp in none gzip zstd; do
    cflag=
    [ $comp != none ] && cflag="--compress $comp"
    $XVAGEN vm-$sum-$comp.xva --vm web01 d0.raw d1.raw $flag $cflag
    rm -rf out && mkdir out
    if "$VDKIT" convert "vm-$sum-$comp.xva" out/ >list.txt && same_disks out raw &&
      [ "$(cat list.txt)" = "$(printf 'out/web01-disk0.raw\nout/web01-disk1.raw')" ]; then
      pass "$sum, $comp, file: both disks converted into NAME-diskN targets, byte for byte"
    else
      fail "$sum, $comp, file: targets differ from the raw disks"
    fi
    rm -rf out && mkdir out
    if "$VDKIT" convert -O qcow2 - out/ <"vm-$sum-$comp.xva" >/dev/null && same_disks out qcow2; then
      pass "$sum, $comp, standard input: both disks converted to qcow2, byte for byte"
    else
      fail "$sum, $comp, standard input: targets differ"
    fi
  done
done

# From a pipe that cannot seek, chunks of the second disk first.
$XVAGEN - --vm web01 d0.raw d1.raw --order reverse --compress zstd | {
  rm -rf out && mkdir out
  "$VDKIT" convert - out/ >/dev/null
} && same_disks out raw && pass "a zstd pipe with the disks in reverse order converts" ||
  fail "a zstd pipe with the disks in reverse order"

# Random access to the uncompressed file: info lists the VM and its disks; map, compare, NBD read disk 0.
xva=vm-sha1-none.xva
"$VDKIT" info --output=json $xva >info.json
check "info lists the VM name and both disks" python3 - info.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
spec = j.get("format-specific", j)
text = json.dumps(j)
sys.exit(not ("web01" in text and "d0.raw" in text and "d1.raw" in text and j["virtual-size"] == 8 << 20))
PY
"$VDKIT" map --output=json $xva >map.json
check "map: chunks left out of the export are holes" python3 - map.json <<'PY'
import json, sys
m = [(e["start"], e["length"], e["data"]) for e in json.load(open(sys.argv[1]))]
sys.exit(m != [(0, 3 << 20, True), (3 << 20, 3 << 20, False), (6 << 20, 2 << 20, True)])
PY
check "compare: disk 0 of the XVA reads as the raw disk" "$VDKIT" compare $xva d0.raw
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
  rm -f nbd.raw
  nbdkit -U - "$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so" file="$SCRATCH/$xva" --run 'nbdcopy "$uri" nbd.raw'
  check "nbdkit + vdkit plugin serves disk 0 of the XVA" cmp -s d0.raw nbd.raw
fi
if [ -e /dev/fuse ]; then
  mkdir -p mnt
  if "$VDKIT" mount --raw $xva mnt; then
    check "vdkit mount --raw shows disk 0 of the XVA" cmp -s mnt/disk d0.raw
    "$VDKIT" umount mnt
  else
    fail "vdkit mount --raw of an XVA"
  fi
fi
# Disk 1 of the same file: --xva-disk for info, map, compare, convert to one target, the plugin's xva-disk= and mount.
check "--xva-disk 1: info shows the second disk's size" \
  bash -c "'$VDKIT' info --output=json --xva-disk 1 $xva | grep -q '\"virtual-size\": 3000320'"
"$VDKIT" map --output=json --xva-disk 1 $xva >map1.json
check "--xva-disk 1: map has the second disk's data then its left-out zero chunk as a hole" python3 - map1.json <<'PY'
import json, sys
m = [(e["start"], e["length"], e["data"]) for e in json.load(open(sys.argv[1]))]
sys.exit(m != [(0, 2 << 20, True), (2 << 20, 3000320 - (2 << 20), False)] and print(m))
PY
check "--xva-disk 1: compare reads the second disk as its raw disk" "$VDKIT" compare --xva-disk 1 $xva d1.raw
rm -f one.raw
check "--xva-disk 1: convert to one target writes the second disk" \
  bash -c "'$VDKIT' convert -O raw --xva-disk 1 $xva one.raw >/dev/null && cmp -s one.raw d1.raw"
out=$("$VDKIT" info --xva-disk 2 $xva 2>&1) && fail "--xva-disk past the VM's disks accepted" ||
  { echo "$out" | grep -q "has no disk 2: VM 'web01' has 2" && pass "--xva-disk past the disks: $out" ||
    fail "wrong message: $out"; }
out=$("$VDKIT" info --xva-disk 1 d0.raw 2>&1) && fail "--xva-disk on a raw disk accepted" ||
  { echo "$out" | grep -q "only an XVA export" && pass "--xva-disk on a one-disk image: $out" ||
    fail "wrong message: $out"; }
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
  rm -f nbd1.raw
  nbdkit -U - "$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so" file="$SCRATCH/$xva" xva-disk=1 \
    --run 'nbdcopy "$uri" nbd1.raw'
  check "nbdkit + vdkit plugin with xva-disk=1 serves the second disk" cmp -s d1.raw nbd1.raw
fi
if [ -e /dev/fuse ]; then
  mkdir -p mnt
  if "$VDKIT" mount --raw --xva-disk 1 $xva mnt; then
    check "vdkit mount --raw --xva-disk 1 shows the second disk" cmp -s mnt/disk d1.raw
    "$VDKIT" umount mnt
  else
    fail "vdkit mount --raw --xva-disk 1"
  fi
fi
# A guest whose root file system is on its second disk: inspect reads every disk of the XVA.
if command -v mkfs.ext4 >/dev/null; then
  mkdir -p groot/etc
  printf '/dev/xvdb / ext4 defaults 0 1\n' >groot/etc/fstab
  printf 'ID=debian\nVERSION_ID=12\nPRETTY_NAME="Debian GNU/Linux 12"\n' >groot/etc/os-release
  truncate -s 16M g.raw && mkfs.ext4 -q -d groot g.raw
  $XVAGEN guest.xva --vm web02 d0.raw g.raw
  "$VDKIT" inspect --output json guest.xva >inspect.json 2>/dev/null
  check "inspect of an XVA whose root is on disk 1: the guest is found there" python3 - inspect.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
on1 = [f for f in j["filesystems"] if f["disk"] == 1 and f["type"] == "ext4"]
sys.exit(not ("Debian GNU/Linux 12" in json.dumps(j) and on1))
PY
  out=$("$VDKIT" inspect --xva-disk 0 guest.xva 2>&1 || true)
  check "inspect --xva-disk 0 reads only disk 0 (no OS there)" bash -c "! echo '$out' | grep -q 'Debian GNU/Linux 12'"
fi
out=$("$VDKIT" info vm-sha1-gzip.xva 2>&1) && fail "random access to a compressed XVA" ||
  { echo "$out" | grep -q "front to back" && pass "compressed XVA for random access: $out" || fail "wrong message: $out"; }

# Hostile: each run stops with a message and leaves no target and no temporary file.
no_targets() { [ -z "$(ls -A out)" ]; }
hostile() {  # DESCRIPTION EXPECTED-MESSAGE-PART XVAGEN-ARGS...
  local what=$1 want=$2
  shift 2
  $XVAGEN bad.xva --vm web01 d0.raw d1.raw "$@"
  for how in file stdin; do
    rm -rf out && mkdir out
    local rc=0
    if [ $how = file ]; then
      out=$("$VDKIT" convert bad.xva out/ 2>&1) || rc=$?
    else
      out=$("$VDKIT" convert - out/ <bad.xva 2>&1) || rc=$?
    fi
    if [ $rc -ne 0 ] && echo "$out" | grep -q "$want" && no_targets; then
      pass "$what ($how): refused, nothing left: $out"
    else
      fail "$what ($how): $out; left: $(ls out)"
    fi
  done
}
hostile "SHA-1 mismatch in disk 1" "SHA-1 of the chunk" --bad-sum 1:0
hostile "xxh64 mismatch in disk 0 (gzip)" "xxh64 of the chunk" --xxhash --bad-sum 0:6 --compress gzip
hostile "chunk without a checksum" "is not followed by its .checksum" --no-sum 0:1
size=$(stat -c %s vm-sha1-none.xva)
hostile "tar truncated inside a chunk" "truncated" --truncate $((size - 700000))
last=$(python3 -c 'import tarfile,sys; print(tarfile.open(sys.argv[1]).getmembers()[-1].offset)' vm-sha1-none.xva)
hostile "tar truncated inside a header" "truncated" --truncate $((last + 100))
hostile "tar truncated between two members" "without its end-of-archive" --truncate $((last))
hostile "zstd stream truncated" "truncated" --compress zstd --truncate 2000000
$XVAGEN bad.xva --vm web01 d0.raw --bad-sum 0:0
check "random access: a chunk with a bad checksum fails its first read, naming the chunk" \
  bash -c "'$VDKIT' compare bad.xva d0.raw 2>&1 | grep -q 'chunk 0 of disk Ref:11'"

finish
