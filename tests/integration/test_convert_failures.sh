#!/usr/bin/env bash
# A conversion that fails part way (target file system full, truncated source, SIGINT/SIGTERM mid-run, existing
# target) exits non-zero with a clear message, leaves no target and no temporary file, and never changes the source.
source "$(dirname "$0")/lib.sh"
make_matrix
src() { grep -P "^$1\t" "$MATRIX/manifest.tsv" | cut -f2; }
base=$(src raw)
no_trace() { [ ! -e "$1" ] && [ -z "$(find "$(dirname "$1")" -maxdepth 1 -name "$(basename "$1").vdkit-tmp.*")" ]; }
# expect_fail WHAT PATTERN TARGET CMD...: CMD exits 1, stderr matches PATTERN, TARGET and its temp file are gone.
expect_fail() {
  local what=$1 pattern=$2 target=$3; shift 3
  local rc=0
  "$@" 2>"$SCRATCH/err" >/dev/null || rc=$?
  check "$what: exits 1 (got $rc)" [ "$rc" -eq 1 ]
  if grep -Eq "$pattern" "$SCRATCH/err"; then pass "$what: says '$pattern'"; else
    fail "$what: message '$(cat "$SCRATCH/err")' does not match '$pattern'"; fi
  check "$what: no target and no temporary file" no_trace "$target"
}

# 1. The target's file system fills up (a 2 MiB tmpfs; base.raw holds 2.3 MB of data).
small=$SCRATCH/small
mkdir -p "$small"
if mount -t tmpfs -o size=2m vdkit-test "$small" 2>/dev/null; then
  trap 'umount "$small" 2>/dev/null || true; cleanup_scratch' EXIT
  before=$(sum_of "$base")
  expect_fail "full file system (raw)" "No space left on device" "$small/out.raw" "$VDKIT" convert "$base" "$small/out.raw"
  expect_fail "full file system (qcow2)" "No space left on device" "$small/out.qcow2" \
    "$VDKIT" convert -O qcow2 "$base" "$small/out.qcow2"
  check "full file system: source unchanged" [ "$before" = "$(sum_of "$base")" ]
  check "full file system: nothing left on it" [ -z "$(ls -A "$small")" ]
  umount "$small"
else
  echo "note: cannot mount a tmpfs here (not root?); the full-disk case is not run"
fi

# 2. Truncated sources: a qcow2 and a monolithicSparse VMDK cut in half, a streamOptimized VMDK cut on stdin.
for name in qcow2-zlib vmdk-monolithicSparse qcow2-v3; do
  cp "$(src "$name")" "$SCRATCH/cut.img"
  truncate -s $(($(stat -c %s "$SCRATCH/cut.img") / 2)) "$SCRATCH/cut.img"
  before=$(sum_of "$SCRATCH/cut.img")
  expect_fail "truncated $name" "end of the file|past the end|beyond|truncated|outside" "$SCRATCH/out.raw" \
    "$VDKIT" convert "$SCRATCH/cut.img" "$SCRATCH/out.raw"
  check "truncated $name: source unchanged" [ "$before" = "$(sum_of "$SCRATCH/cut.img")" ]
done
so=$(src vmdk-streamOptimized)
half=$(($(stat -c %s "$so") / 2))
expect_fail "truncated streamOptimized on stdin" "truncated" "$SCRATCH/out.qcow2" \
  bash -c "head -c $half '$so' | '$VDKIT' convert -O qcow2 - '$SCRATCH/out.qcow2'"

# 3. SIGINT and SIGTERM mid-run, with a slow NBD source (every read delayed by nbdkit's delay filter).
sock=$SCRATCH/slow.sock
nbdkit -U "$sock" -P "$SCRATCH/nbdkit.pid" --filter=delay file "$base" rdelay=1
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
before=$(sum_of "$base")
for sig in INT TERM; do
  "$VDKIT" convert -O qcow2 "nbd+unix:///?socket=$sock" "$SCRATCH/sig.qcow2" 2>"$SCRATCH/err" &
  pid=$!
  # Wait until the temporary target exists: the conversion is under way.
  for _ in $(seq 100); do [ -n "$(find "$SCRATCH" -maxdepth 1 -name 'sig.qcow2.vdkit-tmp.*')" ] && break; sleep 0.05; done
  kill -"$sig" "$pid"
  rc=0
  wait "$pid" || rc=$?
  check "SIG$sig mid-run: exits non-zero (got $rc)" [ "$rc" -ne 0 ]
  check "SIG$sig mid-run: says it was interrupted" grep -q "interrupted by signal" "$SCRATCH/err"
  check "SIG$sig mid-run: no target and no temporary file" no_trace "$SCRATCH/sig.qcow2"
done
kill "$(cat "$SCRATCH/nbdkit.pid")" 2>/dev/null || true
# A stalled standard input (the upstream sends part of a stream, then nothing): Ctrl-C still ends it at once.
"$VDKIT" convert - "$SCRATCH/stall.raw" 2>"$SCRATCH/err" < <(head -c 3000000 "$base"; sleep 8) &
pid=$!
for _ in $(seq 100); do [ -n "$(find "$SCRATCH" -maxdepth 1 -name 'stall.raw.vdkit-tmp.*')" ] && break; sleep 0.05; done
sleep 0.3
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "SIGINT with stdin stalled: exits non-zero (got $rc)" [ "$rc" -ne 0 ]
check "SIGINT with stdin stalled: says it was interrupted" grep -q "interrupted by signal" "$SCRATCH/err"
check "SIGINT with stdin stalled: no target and no temporary file" no_trace "$SCRATCH/stall.raw"
check "signals: source unchanged" [ "$before" = "$(sum_of "$base")" ]

# 4. An existing target is kept without --overwrite, replaced with it.
echo "precious" >"$SCRATCH/exists.raw"
expect_fail_keep() {
  local rc=0
  "$VDKIT" convert "$base" "$SCRATCH/exists.raw" 2>"$SCRATCH/err" || rc=$?
  [ "$rc" -eq 1 ] && grep -q -- "--overwrite" "$SCRATCH/err" && [ "$(cat "$SCRATCH/exists.raw")" = precious ]
}
check "existing target refused without --overwrite, left as it was" expect_fail_keep
check "--overwrite replaces it" "$VDKIT" convert --overwrite "$base" "$SCRATCH/exists.raw"
check "... with the converted image" cmp "$base" "$SCRATCH/exists.raw"

# 5. A source that does not exist: exit 1, nothing created.
expect_fail "missing source" "cannot open" "$SCRATCH/none.raw" "$VDKIT" convert "$SCRATCH/missing.img" "$SCRATCH/none.raw"
# 6. Usage errors exit 2.
rc=0; "$VDKIT" convert -c "$base" "$SCRATCH/x.raw" 2>/dev/null || rc=$?
check "-c with a raw target is a usage error (exit 2, got $rc)" [ "$rc" -eq 2 ]
rc=0; "$VDKIT" convert -O vhd "$base" "$SCRATCH/x.raw" 2>/dev/null || rc=$?
check "an unknown target format is a usage error (exit 2, got $rc)" [ "$rc" -eq 2 ]
finish
