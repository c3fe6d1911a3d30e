# Shared helpers for the integration tests: paths, a scratch folder, assertions and peers.
set -euo pipefail
VDKIT_SRC=${VDKIT_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VDKIT_BUILD=${VDKIT_BUILD:-$VDKIT_SRC/build}
VDKIT_SAMPLES=${VDKIT_SAMPLES:-$VDKIT_SRC/../shared/samples}
VDKIT=$VDKIT_BUILD/cli/vdkit
READCHECK=$VDKIT_BUILD/tests/readcheck
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/vdkit-test.XXXXXX")
cleanup_scratch() { rm -rf "$SCRATCH"; }
trap cleanup_scratch EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
# Skip the whole test (exit 77) naming why.
skip() { echo "SKIP: $*"; exit 77; }
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
# check DESCRIPTION CMD...: runs CMD, counts pass/fail.
check() {
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# The matrix of test images, made once per build tree and shared by every test (tests only read it; the ones
# that write check the sources' checksums). Rebuilt when the generator scripts change; a lock keeps parallel
# tests from building it twice.
make_matrix() {
  local cache=${VDKIT_MATRIX_CACHE:-$VDKIT_BUILD/test-matrix}
  local key
  key=$(cat "$VDKIT_SRC/scripts/make-matrix" "$VDKIT_SRC"/scripts/matrix.d/*.sh | sha256sum | cut -c1-16)
  mkdir -p "$(dirname "$cache")"
  (
    flock 9
    if [ "$(cat "$cache/.key" 2>/dev/null)" != "$key" ]; then
      rm -rf "$cache"
      "$VDKIT_SRC/scripts/make-matrix" "$cache" >/dev/null
      echo "$key" >"$cache/.key"
    fi
  ) 9>"$cache.lock"
  MATRIX=$cache
}
# Reference raw bytes of IMAGE as qemu-img reads it.
qemu_raw() { qemu-img convert -O raw "$1" "$2"; }
# Source files' checksum, to prove they were not modified.
sum_of() { sha256sum "$@" | awk '{print $1}' | sha256sum | awk '{print $1}'; }
