#!/usr/bin/env bash
# Fault injection through VDKIT_FAULT in the real binaries: a failing source read or target write makes convert
# fail cleanly (no target, no temporary file, clear message, source unchanged); the NBD plugin answers EIO for
# the failing request and keeps serving the others; the FUSE view answers EIO and stays mounted.
source "$(dirname "$0")/lib.sh"
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
d=$SCRATCH

# A 16 MiB source with data everywhere, as qcow2, and an ext4 guest for FUSE.
python3 -c "import random,sys; open(sys.argv[1],'wb').write(random.Random(3).randbytes(16<<20))" "$d/src.raw"
qemu-img convert -q -O qcow2 "$d/src.raw" "$d/faulty-src.qcow2"
# NBD and FUSE use a raw copy, so fault offsets (file offsets) are guest offsets.
cp "$d/src.raw" "$d/faulty-src.raw"
before=$(sum_of "$d/faulty-src.qcow2" "$d/faulty-src.raw")

# --- convert: source read error, short read, target write error (ENOSPC), torn target write
convert_fails() {
  local what=$1 fault=$2 fmt=$3
  rm -f "$d"/out.*
  local err=$d/err.txt
  if VDKIT_FAULT=$fault "$VDKIT" convert -O "$fmt" "$d/faulty-src.qcow2" "$d/out.$fmt" 2>"$err"; then
    fail "convert with $what: exited 0"
    return
  fi
  check "convert with $what: no target and no temporary file left" [ -z "$(ls "$d" | grep '^out\.')" ]
  check "convert with $what: message names the failure ($(head -c 120 "$err"))" grep -qiE "$4" "$err"
}
convert_fails "a source read error" "read-error:faulty-src:1048576:65536" raw "input/output error"
convert_fails "a short source read" "short-read:faulty-src:2097152:99999999999:EIO:-1:100" raw "end of the file|short|input/output"
convert_fails "ENOSPC on the target" "write-error:out.qcow2:0:99999999999:ENOSPC" qcow2 "no space"
convert_fails "a torn target write" "torn-write:out.raw:0:99999999999:EIO:1:4096" raw "input/output error"
check "source unchanged by the failed conversions" [ "$(sum_of "$d/faulty-src.qcow2" "$d/faulty-src.raw")" = "$before" ]

# --- NBD: one range fails with EIO, the rest keeps working, the server stays up.
sock=$d/nbd.sock
VDKIT_FAULT="read-error:faulty-src:4194304:65536" nbdkit -f --exit-with-parent -U "$sock" "$PLUGIN" \
  file="$d/faulty-src.raw" &
nbdpid=$!
for _ in $(seq 100); do nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break; sleep 0.1; done
out=$(/usr/bin/python3 - "$sock" "$d/src.raw" <<'PY'
import nbd, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
ref = open(sys.argv[2], "rb").read()
try:
    h.pread(65536, 4194304); print("bad-range-read-succeeded")
except nbd.Error as e:
    print("eio" if e.errno in (5, "EIO") else "errno-%s" % e.errno)
ok = all(h.pread(65536, off) == ref[off:off + 65536] for off in (0, 8 << 20, (16 << 20) - 65536))
print("others-ok" if ok else "others-wrong")
PY
) || true
check "NBD: the failing range gets EIO" grep -q '^eio$' <<<"$out"
check "NBD: other reads on the same connection still right" grep -q '^others-ok$' <<<"$out"
check "NBD: a new client after the error reads the right bytes" \
  cmp <(nbdcopy "nbd+unix:///?socket=$sock" - | head -c 1048576) <(head -c 1048576 "$d/src.raw")
check "NBD: server still running" kill -0 "$nbdpid"
kill "$nbdpid"; wait "$nbdpid" 2>/dev/null || true

# --- FUSE raw view: EIO on the failing range, mount stays up.
if [ -e /dev/fuse ]; then
  mnt=$d/mnt; mkdir -p "$mnt"
  if VDKIT_FAULT="read-error:faulty-src:8388608:65536" "$VDKIT" mount --raw "$d/faulty-src.raw" "$mnt"; then
    if dd if="$mnt/disk" of=/dev/null bs=64k skip=128 count=1 iflag=direct 2>"$d/dd.err"; then
      fail "FUSE: read of the failing range succeeded"
    else
      check "FUSE: the failing range gives EIO" grep -qi "input/output error" "$d/dd.err"
    fi
    check "FUSE: other ranges read right after the error" \
      cmp <(dd if="$mnt/disk" bs=1M count=4 iflag=direct status=none) <(head -c 4194304 "$d/src.raw")
    check "FUSE: still mounted" mountpoint -q "$mnt"
    "$VDKIT" umount "$mnt" || fusermount3 -u "$mnt"
  else
    fail "FUSE: vdkit mount --raw failed"
  fi
else
  echo "FUSE part skipped: /dev/fuse is missing"
fi
check "source unchanged" [ "$(sum_of "$d/faulty-src.qcow2" "$d/faulty-src.raw")" = "$before" ]
finish
