#!/usr/bin/env bash
# Writes through the plugin: into the memory overlay, into a qcow2 overlay file (checked by qemu-img check, compare and
# info --backing-chain, and read back by vdkit), and in place on raw; the source never changes unless asked.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
for tool in nbdkit nbdcopy nbdsh qemu-img qemu-io; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -f "$PLUGIN" ] || skip "the plugin is not built ($PLUGIN)"
PY=/usr/bin/python3
"$PY" -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
export PATH=/usr/bin:$PATH  # nbdsh runs `python3`, which must be the one with libnbd
make_matrix


# write_session EXPECTED.raw SEED: random writes (some FUA), zeros and trims through libnbd, applied to EXPECTED.raw
# too; then reads the whole export back on a second connection. Trimmed bytes may read as zeros or as before
# (NBD leaves them unspecified); whatever they read is what EXPECTED.raw keeps. Prints "ok" or the first mismatch.
write_session() {
  "$PY" - "$URI" "$1" "$2" <<'PY'
import random, sys, nbd
uri, exp_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = nbd.NBD(); h.connect_uri(uri)
size = h.get_size()
exp = bytearray(open(exp_path, "rb").read())
assert len(exp) == size, (len(exp), size)
before = bytes(exp)
trimmed = bytearray(size)  # 1 where a trim left the content unspecified
r = random.Random(seed)
for i in range(120):
    kind = r.choice(["write", "write", "write", "zero", "trim"])
    n = r.choice([1, 511, 4096, 4097, 65536, 70000, 300000])
    off = r.randrange(0, size - n)
    if r.random() < 0.3:
        off -= off % 4096
    if kind == "write":
        data = r.randbytes(n)
        h.pwrite(data, off, nbd.CMD_FLAG_FUA if i % 5 == 0 else 0)
        exp[off:off + n] = data
        trimmed[off:off + n] = bytes(n)
    elif kind == "zero":
        h.zero(n, off)
        exp[off:off + n] = bytes(n)
        trimmed[off:off + n] = bytes(n)
    else:
        h.trim(n, off)
        trimmed[off:off + n] = b"\1" * n
h.flush()
# A second connection sees every write of the first (one overlay for the whole server).
h2 = nbd.NBD(); h2.connect_uri(uri)
got = bytearray()
for pos in range(0, size, 4 << 20):
    got += h2.pread(min(4 << 20, size - pos), pos)
pos = trimmed.find(1)
while pos != -1:
    end = trimmed.find(0, pos)
    end = size if end == -1 else end
    g = got[pos:end]
    if g != exp[pos:end]:
        for k in range(pos, end):
            if got[k] != 0 and got[k] != exp[k]:
                print("trimmed byte %d reads %d: neither zero nor its old value %d" % (k, got[k], exp[k])); sys.exit(1)
        exp[pos:end] = g
    pos = trimmed.find(1, end)
if got != exp:
    bad = next(i for i in range(size) if got[i] != exp[i])
    print("byte %d reads %d, expected %d" % (bad, got[bad], exp[bad])); sys.exit(1)
open(exp_path, "wb").write(exp)
print("ok")
PY
}

# pick NAME: the path of a matrix image by name, or empty.
pick() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$MATRIX/manifest.tsv"; }

sources=(raw vmdk-streamOptimized vmdk-monolithicSparse vmdk-snapshot-delta2 qcow2-v3 qcow2-zstd qcow2-chain3)
for name in "${sources[@]}"; do
  src=$(pick "$name")
  [ -n "$src" ] || continue
  src_sum=$(sum_of "$src")

  # ---- memory overlay ----
  qemu_raw "$src" "$SCRATCH/expected.raw"
  if start_server "$SCRATCH/server.log" file="$src" writable=overlay; then
    out=$(write_session "$SCRATCH/expected.raw" 1)
    check "$name, memory overlay: libnbd writes, zeros and trims read back on another connection ($out)" \
      [ "$out" = ok ]
    rm -f "$SCRATCH/copy.raw"
    check "$name, memory overlay: nbdcopy --connections=4 of the export equals the expected bytes" \
      bash -c "nbdcopy --connections=4 '$URI' '$SCRATCH/copy.raw' && cmp -s '$SCRATCH/copy.raw' '$SCRATCH/expected.raw'"
    check "$name, memory overlay: qemu-io writes land and read back" \
      bash -c "qemu-io -f raw -c 'write -P 0xa5 12345 7000' -c 'read -P 0xa5 12345 7000' '$URI' | grep -q 'read 7000/7000'"
    check "$name, memory overlay: nbdkit stops cleanly" stop_server
  else
    fail "$name, memory overlay: nbdkit did not start: $(cat "$SCRATCH/server.log")"
  fi
  check "$name, memory overlay: the source is unchanged" [ "$(sum_of "$src")" = "$src_sum" ]

  # ---- qcow2 overlay file ----
  ov=$SCRATCH/$name-overlay.qcow2
  rm -f "$ov"
  qemu_raw "$src" "$SCRATCH/expected.raw"
  if start_server "$SCRATCH/server.log" file="$src" overlay="$ov"; then
    out=$(write_session "$SCRATCH/expected.raw" 2)
    check "$name, qcow2 overlay: libnbd writes, zeros and trims read back ($out)" [ "$out" = ok ]
    qemu-io -f raw -c 'write -P 0x3c 1000000 70000' "$URI" >/dev/null &&
      "$PY" -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(1000000); f.write(b'\x3c' * 70000)" "$SCRATCH/expected.raw"
    check "$name, qcow2 overlay: nbdkit stops cleanly (flushing the overlay)" stop_server
    check "$name, qcow2 overlay: qemu-img check finds no errors" qemu-img check -q "$ov"
    check "$name, qcow2 overlay: qemu-img compare with the expected bytes is identical" \
      qemu-img compare -q -f qcow2 -F raw "$ov" "$SCRATCH/expected.raw"
    chain=$(qemu-img info --backing-chain --output=json "$ov" |
      "$PY" -c 'import json,sys; print(" ".join(i["format"] for i in json.load(sys.stdin)))')
    check "$name, qcow2 overlay: qemu-img info --backing-chain shows qcow2 over the source ($chain)" \
      [ "${chain%% *}" = qcow2 -a "$(echo "$chain" | wc -w)" -ge 2 ]
    rm -f "$SCRATCH/vdkit.raw"
    check "$name, qcow2 overlay: vdkit reads the overlay as written" \
      bash -c "'$READCHECK' --allow-external-paths '$ov' '$SCRATCH/vdkit.raw' && cmp -s '$SCRATCH/vdkit.raw' '$SCRATCH/expected.raw'"
  else
    fail "$name, qcow2 overlay: nbdkit did not start: $(cat "$SCRATCH/server.log")"
  fi
  check "$name, qcow2 overlay: the source is unchanged" [ "$(sum_of "$src")" = "$src_sum" ]
  rm -f "$ov" "$SCRATCH/vdkit.raw" "$SCRATCH/copy.raw"
done

# ---- in place, on a copy of the raw image ----
raw=$(pick raw)
cp --sparse=always "$raw" "$SCRATCH/inplace.raw"
cp --sparse=always "$raw" "$SCRATCH/expected.raw"
if start_server "$SCRATCH/server.log" file="$SCRATCH/inplace.raw" writable=in-place; then
  out=$(write_session "$SCRATCH/expected.raw" 3)
  check "raw, in place: writes, zeros and trims read back ($out)" [ "$out" = ok ]
  check "raw, in place: nbdkit stops cleanly" stop_server
  check "raw, in place: the file holds exactly what was written" cmp -s "$SCRATCH/inplace.raw" "$SCRATCH/expected.raw"
else
  fail "raw, in place: nbdkit did not start: $(cat "$SCRATCH/server.log")"
fi

# ---- in place, on a copy of a qcow2 image ----
q=$(pick qcow2-v3)
if [ -n "$q" ]; then
  cp "$q" "$SCRATCH/inplace.qcow2"
  qemu_raw "$q" "$SCRATCH/expected.raw"
  if start_server "$SCRATCH/server.log" file="$SCRATCH/inplace.qcow2" writable=in-place; then
    out=$(write_session "$SCRATCH/expected.raw" 4)
    check "qcow2, in place: writes, zeros and trims read back ($out)" [ "$out" = ok ]
    check "qcow2, in place: nbdkit stops cleanly" stop_server
    check "qcow2, in place: qemu-img check finds no errors" qemu-img check -q "$SCRATCH/inplace.qcow2"
    check "qcow2, in place: qemu-img compare with the expected bytes is identical" \
      qemu-img compare -q -f qcow2 -F raw "$SCRATCH/inplace.qcow2" "$SCRATCH/expected.raw"
  else
    fail "qcow2, in place: nbdkit did not start: $(cat "$SCRATCH/server.log")"
  fi
fi

# ---- through `vdkit serve` ----
so=$(pick vmdk-streamOptimized)
so=${so:-$raw}
so_sum=$(sum_of "$so")
out=$("$VDKIT" serve "$so" --writable=overlay --run \
  'nbdsh -u "$uri" -c "h.pwrite(b\"vdkit\" * 1000, 4096); assert h.pread(5000, 4096) == b\"vdkit\" * 1000; print(h.get_size())"' 2>&1)
check "vdkit serve --writable=overlay --run: nbdsh writes read back ($out)" [ "$out" = "$(qemu-img info --output=json "$so" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" ]
"$VDKIT" serve "$so" --run 'exit 7' && rc=0 || rc=$?
check "vdkit serve --run exits with the command's status (7, got $rc)" [ "$rc" = 7 ]
rm -f "$SCRATCH/serve-ov.qcow2"
qemu_raw "$so" "$SCRATCH/expected.raw"
"$PY" -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(65536 * 3 + 17); f.write(b'\x7e' * 100000)" "$SCRATCH/expected.raw"
check "vdkit serve --overlay: qemu-io writes through the URI" \
  "$VDKIT" serve "$so" --overlay "$SCRATCH/serve-ov.qcow2" --run \
  'qemu-io -f raw -c "write -P 0x7e $((65536 * 3 + 17)) 100000" "$uri" >/dev/null'
check "vdkit serve --overlay: the overlay compares identical to the expected bytes" \
  qemu-img compare -q -f qcow2 -F raw "$SCRATCH/serve-ov.qcow2" "$SCRATCH/expected.raw"
rm -f "$SCRATCH/serve.out"
"$VDKIT" serve "$so" --output=json > "$SCRATCH/serve.out" &
serve_pid=$!
while [ ! -s "$SCRATCH/serve.out" ] && kill -0 "$serve_pid" 2>/dev/null; do sleep 0.05; done
uri=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["uri"])' "$SCRATCH/serve.out" 2>/dev/null || true)
check "vdkit serve prints a URI that nbdinfo reads ($uri)" bash -c "nbdinfo --size '$uri' >/dev/null"
kill -TERM "$serve_pid"
wait "$serve_pid" && rc=0 || rc=$?
check "vdkit serve exits 0 on SIGTERM (got $rc)" [ "$rc" = 0 ]
check "vdkit serve: the source is unchanged" [ "$(sum_of "$so")" = "$so_sum" ]
"$VDKIT" serve "$SCRATCH/missing.vmdk" 2>/dev/null && rc=0 || rc=$?
check "vdkit serve of a missing file exits 1 (got $rc)" [ "$rc" = 1 ]
"$VDKIT" serve "$so" --writable=sometimes 2>/dev/null && rc=0 || rc=$?
check "vdkit serve with a bad --writable exits 2 (got $rc)" [ "$rc" = 2 ]
finish
