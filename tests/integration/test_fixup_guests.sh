#!/usr/bin/env bash
# inspect and fixup on every test guest, as streamOptimized VMDK and qcow2: every fixed file's exact content (read back
# with debugfs), e2fsck -fn clean, dry run changes no byte, second run changes nothing, warnings as expected, source untouched.
source "$(dirname "$0")/lib.sh"
for t in debugfs e2fsck qemu-img sfdisk mkfs.ext4 cpio xz zstd lz4; do
  command -v "$t" >/dev/null || PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null || skip "$t is not installed"
done
export PATH=$PATH:/sbin:/usr/sbin
GUESTS=$VDKIT_SRC/tests/guests

# jq-less JSON lookups: json_get FILE DOTTED.PATH prints the value (lists by index).
json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}

# Extracts each ext partition of RAW into $2/p<N>.img and lists "N file mountpoint".
extract_parts() {
  local raw=$1 dir=$2 parts=$3
  while read -r num off size type; do
    case $type in ext*) dd if="$raw" of="$dir/p$num.img" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) \
      status=none ;; esac
  done <"$parts"
}

# check_expected NAME RAW PARTS INSPECT_JSON: every file under expected/ has exactly that content in the guest.
check_expected() {
  local name=$1 raw=$2 parts=$3 js=$4 dir=$SCRATCH/x.$name
  rm -rf "$dir"
  mkdir -p "$dir"
  extract_parts "$raw" "$dir" "$parts"
  # Mount points from vdkit's inspection (partition -> mountpoint).
  python3 - "$js" >"$dir/mounts" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1]))["filesystems"]:
    if f.get("mountpoint", "").startswith("/"):
        print(f["partition"], f["mountpoint"])
PY
  local ok=1
  while IFS= read -r -d '' f; do
    local rel=/${f#"$GUESTS/$name/expected/"}
    # The longest mount point that holds rel.
    local best="" bestpart=""
    while read -r p mp; do
      if [ "$mp" = / ] || [ "${rel#"$mp"/}" != "$rel" ]; then
        if [ ${#mp} -gt ${#best} ]; then best=$mp bestpart=$p; fi
      fi
    done <"$dir/mounts"
    local inner=$rel
    [ "$best" != / ] && inner=/${rel#"$best"/}
    local img=$dir/p$bestpart.img
    [ "$bestpart" = 0 ] && img=$raw
    if ! debugfs -R "cat \"$inner\"" "$img" 2>/dev/null >"$dir/got" || ! cmp -s "$f" "$dir/got"; then
      echo "  $rel differs from tests/guests/$name/expected$rel:" >&2
      diff -u "$f" "$dir/got" >&2 || true
      ok=0
    fi
  done < <(find "$GUESTS/$name/expected" -type f -print0)
  for img in "$dir"/p*.img; do
    [ -e "$img" ] || img=$raw
    e2fsck -fn "$img" >"$dir/fsck" 2>&1 || { cat "$dir/fsck" >&2; ok=0; }
  done
  [ "$(awk '$1==0' "$parts")" ] && { e2fsck -fn "$raw" >"$dir/fsck" 2>&1 || { cat "$dir/fsck" >&2; ok=0; }; }
  [ $ok = 1 ]
}

for name in $("$VDKIT_SRC/scripts/make-guest" --list); do
  # XFS guests are written only with --kernel: test_fixup_xfs_guests.sh covers them.
  grep -Eq '^part .* xfs(-v4)? ' "$GUESTS/$name/manifest" && continue
  # Btrfs guests are written through the kernel (--kernel, root): test_btrfs_guests.sh.
  grep -q '^btrfs ' "$GUESTS/$name/manifest" && continue
  out=$SCRATCH/$name
  "$VDKIT_SRC/scripts/make-guest" "$name" "$out" >/dev/null || { fail "$name: make-guest"; continue; }
  parts=$out/$name.parts
  for fmt in vmdk qcow2; do
    src=$out/$name.$fmt
    sum=$(sum_of "$src")

    # Inspection facts.
    "$VDKIT" inspect --output=json "$src" >"$out/inspect.json" || { fail "$name.$fmt: inspect"; continue; }
    bad=0
    while read -r key want; do
      got=$(json_get "$out/inspect.json" "$key" 2>&1) || got="<missing>"
      [ "$got" = "$want" ] || { echo "  $key: got '$got', want '$want'" >&2; bad=1; }
    done < <(grep -v '^#' "$GUESTS/$name/inspect.expect")
    check "$name.$fmt: inspect reports what the guest holds" [ $bad = 0 ]
    check "$name.$fmt: human inspection names the OS" grep -q "^Operating system: " <("$VDKIT" inspect "$src")

    # Dry run: a diff, no byte changed.
    "$VDKIT" fixup --dry-run "$src" >"$out/dry.txt"
    check "$name.$fmt: dry run leaves the source byte for byte" [ "$(sum_of "$src")" = "$sum" ]
    if [ -n "$(find "$GUESTS/$name/expected" -type f | head -1)" ]; then
      check "$name.$fmt: dry run prints a unified diff" grep -q '^+++ b/' "$out/dry.txt"
    fi

    # The fix, into a new qcow2 (the source stays as it is).
    fixed=$out/fixed.qcow2
    rm -f "$fixed"
    "$VDKIT" fixup --output-json -o "$fixed" "$src" >"$out/fix.json" || { fail "$name.$fmt: fixup -o"; continue; }
    check "$name.$fmt: the source is unchanged" [ "$(sum_of "$src")" = "$sum" ]
    want_w=$(sort -u "$GUESTS/$name/warnings.expect" | paste -sd' ')
    got_w=$(python3 -c 'import json,sys; print(" ".join(sorted({w["code"] for w in json.load(open(sys.argv[1]))["warnings"]})))' \
      "$out/fix.json")
    check "$name.$fmt: warnings are '$want_w' (got '$got_w')" [ "$got_w" = "$want_w" ]
    qemu-img check -q "$fixed"
    check "$name.$fmt: qemu-img check accepts the fixed image" [ $? = 0 ]
    qemu-img convert -O raw "$fixed" "$out/fixed.raw"
    check "$name.$fmt: every fixed file has its expected content, e2fsck -fn clean" \
      check_expected "$name" "$out/fixed.raw" "$parts" "$out/inspect.json"

    # A second run finds nothing to change; in place on the fixed qcow2, then a third sees none either.
    fixed_sum=$(sum_of "$fixed")
    "$VDKIT" fixup --output-json --in-place "$fixed" >"$out/again.json"
    check "$name.$fmt: a second run changes no byte of the image" [ "$(sum_of "$fixed")" = "$fixed_sum" ]
    n=$(json_get "$out/again.json" changes | python3 -c 'import sys,ast; print(len(ast.literal_eval(sys.stdin.read())))')
    check "$name.$fmt: a second run changes nothing" [ "$n" = 0 ]
    rm -f "$out/fixed.raw" "$fixed"
  done

  # In place on a qcow2 copy gives the same files.
  cp "$out/$name.qcow2" "$out/inplace.qcow2"
  "$VDKIT" fixup --in-place "$out/inplace.qcow2" >/dev/null
  qemu-img convert -O raw "$out/inplace.qcow2" "$out/inplace.raw"
  check "$name: --in-place on qcow2 gives the expected files" \
    check_expected "$name" "$out/inplace.raw" "$parts" "$out/inspect.json"
  rm -rf "$out"
done
finish
