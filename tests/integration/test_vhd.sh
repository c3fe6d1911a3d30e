#!/usr/bin/env bash
# VHD against its peers: qemu-img's vpc images (dynamic and fixed, with and without force_size) read the same
# through vdkit as through `qemu-img convert -f vpc`, `vhdimount` (libvhdi) and nbdkit with the vdkit plugin; maps
# agree with `qemu-img map`. Differencing disks and partial sector bitmaps come from tests/tools/vhdgen.py (written
# from the specification; qemu-img cannot write them) and are checked against the raw disk they were made from and
# against libvhdi. Then the creator-app size rule, the path rules for parents, UUID, loop and hostile images.
# Run time: about 20 seconds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/map_lib.sh"
command -v qemu-img >/dev/null || skip "qemu-img is not installed"
VHDGEN="python3 $VDKIT_SRC/tests/tools/vhdgen.py"
cd "$SCRATCH"

have_vhdi=1
command -v vhdiinfo >/dev/null && command -v vhdimount >/dev/null || have_vhdi=0
[ -e /dev/fuse ] || have_vhdi=0
# vhdi_raw IMAGE OUT: the disk as libvhdi's FUSE view shows it (a chain shows as vhdi1 = base ... vhdiN = top).
vhdi_raw() {
  local mnt=$SCRATCH/vhdi-mnt
  mkdir -p "$mnt"
  # libvhdi looks for a parent from the working directory, so run it from the image's folder.
  (cd "$(dirname "$1")" && vhdimount "$(basename "$1")" "$mnt" >/dev/null 2>&1) || return 1
  local i
  for i in $(seq 50); do [ -e "$mnt/vhdi1" ] && break; sleep 0.1; done
  cp "$mnt/$(ls "$mnt" | sort -V | tail -1)" "$2"
  local rc=$?
  fusermount3 -u "$mnt" 2>/dev/null || fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
  return $rc
}

# A source disk with data, zeros and a hole; 9 MiB + 3 sectors so the last block is partial.
head -c 3M /dev/urandom >src.raw
head -c 1M /dev/zero >>src.raw
head -c 1M /dev/urandom >>src.raw
truncate -s $((9 * 1024 * 1024 + 1536)) src.raw
for sub in dynamic fixed; do
  for fs in off on; do
    img=$sub-$fs.vhd
    qemu-img convert -O vpc -o subformat=$sub,force_size=$fs src.raw "$img"
    qemu-img convert -f vpc -O raw "$img" ref.raw
    rm -f ours.raw
    if "$VDKIT" convert -O raw "$img" ours.raw && cmp -s ref.raw ours.raw; then
      pass "$img: vdkit convert reads what qemu-img convert -f vpc reads"
    else
      fail "$img: vdkit and qemu-img read different bytes"
    fi
    qsize=$(qemu-img info -f vpc --output=json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
    vsize=$("$VDKIT" info --output=json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
    check "$img: virtual size $vsize is qemu-img's $qsize" [ "$vsize" = "$qsize" ]
    # qemu calls all of a fixed disk data; its raw driver over the same bytes sees the file's holes, as vdkit does.
    if [ $sub = fixed ]; then
      qemu-img map --output=json --image-opts "driver=raw,size=$qsize,file.driver=file,file.filename=$img" >qemu.json
    else
      qemu-img map -f vpc --output=json "$img" >qemu.json
    fi
    if "$VDKIT" map --output=json "$img" >ours.json && compare_maps ours.json qemu.json ref.raw; then
      pass "$img: vdkit map agrees with qemu-img map"
    else
      fail "$img: vdkit map disagrees with qemu-img map"
    fi
    if [ $have_vhdi = 1 ]; then
      if vhdi_raw "$img" vhdi.raw && cmp -s <(head -c "$vsize" vhdi.raw) ours.raw; then
        pass "$img: vhdimount shows the bytes vdkit reads"
      else
        fail "$img: vhdimount and vdkit differ"
      fi
      vsz=$(vhdiinfo "$img" | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p')
      check "$img: vhdiinfo's media size $vsz is vdkit's" [ "$vsz" = "$vsize" ]
    fi
  done
done
[ $have_vhdi = 1 ] || echo "note: libvhdi-utils (vhdiinfo, vhdimount) or /dev/fuse missing; those comparisons skipped"

# The NBD plugin serves a dynamic VHD.
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
  rm -f nbd.raw
  nbdkit -U - "$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so" file="$SCRATCH/dynamic-off.vhd" \
    --run 'nbdcopy "$uri" nbd.raw'
  qemu-img convert -f vpc -O raw dynamic-off.vhd ref.raw
  check "nbdkit + vdkit plugin serves a dynamic VHD byte for byte" cmp -s ref.raw nbd.raw
fi

# Where the creator-app rule makes qemu differ: a disk from Virtual PC ("vpc ") whose CHS geometry gives less than
# Current Size. The specification (and vdkit, Hyper-V, libvhdi) take Current Size; qemu takes the geometry.
cp dynamic-on.vhd vpc.vhd
python3 - vpc.vhd <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
for at in (0, f.seek(0, 2) - 512):
    f.seek(at); b = bytearray(f.read(512))
    b[28:32] = b"vpc "
    struct.pack_into(">HBB", b, 56, 240, 4, 17)
    s = sum(b[:64]) + sum(b[68:])
    struct.pack_into(">I", b, 64, (~s) & 0xffffffff)
    f.seek(at); f.write(b)
PY
vsize=$("$VDKIT" info --output=json vpc.vhd | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
qsize=$(qemu-img info -f vpc --output=json vpc.vhd | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
check "creator 'vpc ': vdkit takes Current Size ($vsize), qemu the CHS size ($qsize = 240*4*17 sectors)" \
  [ "$vsize" = $((9 * 1024 * 1024 + 1536)) -a "$qsize" = $((240 * 4 * 17 * 512)) ]

# A dynamic disk with partial sector bitmaps: clear bits read as zeros.
$VHDGEN dynamic partial.vhd --size $((6 << 20)) --block-size $((1 << 20)) --write 4096:1536:1 --write $((3 << 20)):8192:2 \
  --write $((5 << 20)):512:3 --expect partial.want
rm -f ours.raw
check "partial bitmaps: vdkit reads clear sectors as zeros" \
  bash -c "'$VDKIT' convert -O raw partial.vhd ours.raw && cmp -s partial.want ours.raw"
check "partial bitmaps: qemu-img (which ignores bitmaps) reads the same, the clear sectors being zero on disk" \
  bash -c "qemu-img convert -f vpc -O raw partial.vhd q.raw && cmp -s partial.want q.raw"
"$VDKIT" map --output=json partial.vhd >ours.json
check "partial bitmaps: map reports data exactly on the written sectors" python3 - ours.json <<'PY'
import json, sys
data = [(e["start"], e["length"]) for e in json.load(open(sys.argv[1])) if e["data"]]
sys.exit(data != [(4096, 1536), (3 << 20, 8192), (5 << 20, 512)])
PY
if [ $have_vhdi = 1 ]; then
  if vhdi_raw partial.vhd vhdi.raw && cmp -s vhdi.raw partial.want; then
    pass "partial bitmaps: vhdimount reads the same"
  else
    fail "partial bitmaps: vhdimount differs"
  fi
fi

# Differencing chain: base (qemu-img) <- mid <- top (vhdgen), locators of each kind. The writes are whole 4 KiB
# pages: libvhdi 20210425 reads all eight sectors of a bitmap byte from the child when any of its bits is set,
# where the specification gives each 512-byte sector its own bit (sub-page bitmaps are checked against the raw disk
# above, and by vdkit's unit tests).
mkdir chain
qemu-img convert -O vpc -o subformat=dynamic,force_size=on src.raw chain/base.vhd
qemu-img convert -f vpc -O raw chain/base.vhd chain/base.raw
$VHDGEN diff chain/mid.vhd --parent chain/base.vhd --w2ru '.\base.vhd' --w2ku 'C:\vms\base.vhd' \
  --macx 'file://./base.vhd' --write 0:4096:11 --write $((2 << 20)):4096:12 --write $((9 << 20)):1536:13 \
  --expect chain/mid.raw --parent-raw chain/base.raw
$VHDGEN diff chain/top.vhd --parent chain/mid.vhd --macx 'file://./mid.vhd' --write 8192:4096:21 \
  --write $((4 << 20)):$((1 << 20)):22 --expect chain/top.raw --parent-raw chain/mid.raw
for d in mid top; do
  rm -f ours.raw
  check "differencing $d.vhd: vdkit reads the raw disk it was made from" \
    bash -c "'$VDKIT' convert -O raw chain/$d.vhd ours.raw && cmp -s chain/$d.raw ours.raw"
  if [ $have_vhdi = 1 ]; then
    if vhdi_raw "chain/$d.vhd" vhdi.raw && cmp -s vhdi.raw chain/$d.raw; then
      pass "differencing $d.vhd: vhdimount reads the same"
    else
      fail "differencing $d.vhd: vhdimount differs from the raw disk"
    fi
  fi
done
"$VDKIT" info --backing-chain chain/top.vhd >info.txt
check "info --backing-chain shows top -> mid -> base" \
  bash -c "grep -c '^file format: vhd' info.txt | grep -qx 3 && grep -q 'subformat: differencing' info.txt"
"$VDKIT" map --output=json chain/top.vhd >ours.json
check "differencing map: data where any layer stores it, nothing else" python3 - ours.json chain/base.vhd <<'PY'
import json, subprocess, sys
ours = [(e["start"], e["start"] + e["length"]) for e in json.load(open(sys.argv[1])) if e["data"]]
base = json.loads(subprocess.check_output(["qemu-img", "map", "-f", "vpc", "--output=json", sys.argv[2]]))
want = [(e["start"], e["start"] + e["length"]) for e in base if e["data"]]
want += [(0, 4096), (2 << 20, (2 << 20) + 4096), (9 << 20, (9 << 20) + 1536), (8192, 12288), (4 << 20, 5 << 20)]
def norm(r):
    r = sorted(r); out = []
    for s, e in r:
        if out and s <= out[-1][1]: out[-1] = (out[-1][0], max(out[-1][1], e))
        else: out.append((s, e))
    return out
sys.exit(norm(ours) != norm(want))
PY

# Path rules: a parent outside the folder, a json: name, a wrong UUID, a loop.
mkdir -p sub outside
cp chain/base.vhd outside/base.vhd
$VHDGEN diff sub/ext.vhd --parent outside/base.vhd --w2ru '..\outside\base.vhd' --write 0:512:5
out=$("$VDKIT" info sub/ext.vhd 2>&1) && fail "parent outside the folder opened without --allow-external-paths" ||
  { echo "$out" | grep -q "allow-external-paths" && pass "parent outside the folder refused: $out" || fail "wrong message: $out"; }
check "parent outside the folder opens with --allow-external-paths" "$VDKIT" info --allow-external-paths sub/ext.vhd
$VHDGEN diff sub/json.vhd --parent outside/base.vhd --macx 'json:{"file":"/etc/passwd"}' --parent-name '' \
  --write 0:512:5
out=$("$VDKIT" info --allow-external-paths sub/json.vhd 2>&1) && fail "json: parent name followed" ||
  { echo "$out" | grep -q "json:" && pass "json: parent name refused: $out" || fail "wrong message: $out"; }
$VHDGEN diff chain/wrong.vhd --parent chain/base.vhd --w2ru 'base.vhd' --parent-uuid 00112233445566778899aabbccddeeff \
  --write 0:512:5
out=$("$VDKIT" info chain/wrong.vhd 2>&1) && fail "parent with another UUID accepted" ||
  { echo "$out" | grep -q "Parent Unique Id" && pass "parent UUID mismatch refused: $out" || fail "wrong message: $out"; }
# a.vhd's parent is b.vhd and b.vhd's is a.vhd.
mkdir loop
qemu-img create -q -f vpc loop/seed.vhd 4M
$VHDGEN diff loop/b.vhd --parent loop/seed.vhd --w2ru 'a.vhd' --write 0:512:1
$VHDGEN diff loop/a.vhd --parent loop/b.vhd --w2ru 'b.vhd' --write 0:512:2
out=$("$VDKIT" info loop/a.vhd 2>&1) && fail "parent loop accepted" ||
  { echo "$out" | grep -q "loops" && pass "parent loop refused: $out" || fail "wrong message: $out"; }

# Hostile: a footer checksum, a BAT entry past the end, a damaged footer with its copy at offset 0 intact.
cp fixed-off.vhd badsum.vhd
printf '\x01' | dd of=badsum.vhd bs=1 seek=$(($(stat -c %s badsum.vhd) - 512 + 48)) conv=notrunc status=none
out=$("$VDKIT" info badsum.vhd 2>&1) && fail "bad footer checksum accepted" ||
  { echo "$out" | grep -q "Checksum" && pass "bad footer checksum refused: $out" || fail "wrong message: $out"; }
cp dynamic-off.vhd badbat.vhd
bat=$(python3 -c 'import struct; d=open("badbat.vhd","rb").read(); print(struct.unpack_from(">Q", d, 512+16)[0])')
printf '\x0f\xff\xff\x00' | dd of=badbat.vhd bs=1 seek="$bat" conv=notrunc status=none
out=$("$VDKIT" info badbat.vhd 2>&1) && fail "BAT entry past the end accepted" ||
  { echo "$out" | grep -q "BAT entry 0" && pass "BAT entry past the end refused: $out" || fail "wrong message: $out"; }
cp dynamic-off.vhd endbroken.vhd
printf 'X' | dd of=endbroken.vhd bs=1 seek=$(($(stat -c %s endbroken.vhd) - 512)) conv=notrunc status=none
qemu-img convert -f vpc -O raw dynamic-off.vhd ref.raw
rm -f ours.raw
check "damaged end footer: the copy at offset 0 is used and the disk reads whole" \
  bash -c "'$VDKIT' info endbroken.vhd | grep -q 'copy at offset 0' && '$VDKIT' convert -O raw endbroken.vhd ours.raw &&
           cmp -s ref.raw ours.raw"
check "vdkit compare: the VHD and the raw it came from read the same" "$VDKIT" compare dynamic-off.vhd ref.raw
if [ -e /dev/fuse ]; then
  mkdir -p mnt
  if "$VDKIT" mount --raw chain/top.vhd mnt; then
    check "vdkit mount --raw shows the differencing VHD's disk" cmp -s mnt/disk chain/top.raw
    "$VDKIT" umount mnt
  else
    fail "vdkit mount --raw of a differencing VHD"
  fi
fi

finish
