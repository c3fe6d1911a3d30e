#!/usr/bin/env bash
# `vdkit --help` is a short list (one line per subcommand, every cli/cmd_*.cc listed, no manuals); each
# `vdkit SUB --help` is that subcommand's manual with its options and exit status; unknown subcommands and bare
# `vdkit` are usage errors (exit 2); `vdkit help [SUB]` works as git's does; `vdkit --version` names the version.
source "$(dirname "$0")/lib.sh"
[ -x "$VDKIT" ] || skip "vdkit is not built ($VDKIT)"

# run OUT ERR CMD...: runs CMD with its stdout and stderr in files; the status in $rc.
run() {
  local o=$1 e=$2; shift 2
  rc=0
  "$@" >"$SCRATCH/$o" 2>"$SCRATCH/$e" || rc=$?
}

# The top-level help.
run help.out help.err "$VDKIT" --help
check "--help exits 0 (got $rc)" [ "$rc" -eq 0 ]
lines=$(wc -l <"$SCRATCH/help.out")
check "--help is short: $lines lines (< 40)" [ "$lines" -lt 40 ]
check "--help starts with the usage line" \
  [ "$(head -n1 "$SCRATCH/help.out")" = "usage: vdkit [--version] [--help] SUBCOMMAND [ARGS]" ]
check "--help points at the manuals" grep -qxF "See 'vdkit SUBCOMMAND --help' for the manual of each." "$SCRATCH/help.out"
check "--help writes nothing on stderr" [ ! -s "$SCRATCH/help.err" ]
check "--help shows no subcommand manual" bash -c "! grep -q -e 'Options:' -e 'Exit status' '$SCRATCH/help.out'"
run h.out h.err "$VDKIT" -h
check "-h is --help" cmp -s "$SCRATCH/h.out" "$SCRATCH/help.out"

# The subcommands the binary lists (three spaces, the name, the summary) against the cmd_*.cc files.
listed=$(sed -n 's/^   \([a-z][a-z0-9-]*\)   *[^ ].*/\1/p' "$SCRATCH/help.out" | sort)
sources=$(for f in "$VDKIT_SRC"/cli/cmd_*.cc; do basename "$f" .cc | sed 's/^cmd_//'; done | sort)
check "--help lists every cli/cmd_*.cc, and nothing else" [ "$listed" = "$sources" ]
[ "$listed" = "$sources" ] || diff <(echo "$listed") <(echo "$sources") >&2 || true
check "--help lists at least 9 subcommands" [ "$(echo "$listed" | wc -l)" -ge 9 ]
# Summaries start in one column.
cols=$(awk '/^   [a-z][a-z0-9-]*   *[^ ]/ { match($0, /^   [^ ]+ +/); print RLENGTH }' "$SCRATCH/help.out" | sort -u | wc -l)
check "the summaries are aligned" [ "$cols" -eq 1 ]

# Each subcommand's manual: exit 0, its own usage line, a description, its options, an exit status.
for sub in $listed; do
  run "$sub.out" "$sub.err" "$VDKIT" "$sub" --help
  check "$sub --help exits 0 (got $rc)" [ "$rc" -eq 0 ]
  check "$sub --help starts with 'usage: vdkit $sub'" grep -q "^usage: vdkit $sub " <(head -n1 "$SCRATCH/$sub.out")
  check "$sub --help lists its options" grep -q '^Options:' "$SCRATCH/$sub.out"
  check "$sub --help documents its exit status" grep -qi 'exit status' "$SCRATCH/$sub.out"
  check "$sub --help is longer than a summary" [ "$(wc -l <"$SCRATCH/$sub.out")" -gt 8 ]
  run "help-$sub.out" "help-$sub.err" "$VDKIT" help "$sub"
  check "help $sub is $sub --help (exit $rc)" \
    bash -c "[ $rc -eq 0 ] && cmp -s '$SCRATCH/help-$sub.out' '$SCRATCH/$sub.out'"
done
# Options each manual must mention (a sample per subcommand; the parser's own list is printed from the same
# declarations, so these catch a manual that lost its options rather than a typo).
declare -A want=(
  [compare]="--strict --quiet --output-json --format-b IMAGE_A IMAGE_B"
  [convert]="--target-format --compress --compression --progress --overwrite --fixup SOURCE TARGET"
  [fixup]="--dry-run --in-place --output --device-names --no-network --backup SOURCE"
  [info]="--output --backing-chain --format --allow-external-paths IMAGE"
  [inspect]="--output --format SOURCE"
  [map]="--output --format IMAGE"
  [mount]="--rw --overlay --in-place --partition --raw --kernel --foreground SOURCE MOUNTPOINT"
  [serve]="--socket --port --writable --overlay --partition --run SOURCE"
  [umount]="MOUNTPOINT"
)
for sub in "${!want[@]}"; do
  [ -f "$SCRATCH/$sub.out" ] || continue
  for opt in ${want[$sub]}; do
    check "$sub --help mentions $opt" grep -q -e "$opt" "$SCRATCH/$sub.out"
  done
done

# Unknown subcommands.
run frob.out frob.err "$VDKIT" frob
check "frob exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "frob: unknown subcommand 'frob'" grep -qF "vdkit: unknown subcommand 'frob'" "$SCRATCH/frob.err"
check "frob: points at vdkit --help" grep -qF "See 'vdkit --help'." "$SCRATCH/frob.err"
check "frob: no guess for a name far from all" bash -c "! grep -q 'Did you mean' '$SCRATCH/frob.err'"
check "frob: nothing on stdout" [ ! -s "$SCRATCH/frob.out" ]
run conv.out conv.err "$VDKIT" covnert a b
check "covnert exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "covnert: did you mean 'convert'?" grep -qF "Did you mean 'convert'?" "$SCRATCH/conv.err"
run hf.out hf.err "$VDKIT" help frob
check "help frob exits 2 with unknown subcommand (got $rc)" \
  bash -c "[ $rc -eq 2 ] && grep -qF \"unknown subcommand 'frob'\" '$SCRATCH/hf.err'"
run opt.out opt.err "$VDKIT" --frob
check "--frob exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "--frob: unknown option" grep -qF "vdkit: unknown option '--frob'" "$SCRATCH/opt.err"
# Unknown options of a known subcommand keep CLI11's message.
run io.out io.err "$VDKIT" info --frob x.img
check "info --frob exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "info --frob: CLI11 names the argument" grep -q -e "--frob" "$SCRATCH/io.err"
run ni.out ni.err "$VDKIT" info
check "info without IMAGE exits 2 (got $rc)" [ "$rc" -eq 2 ]

# Bare vdkit: the usage on stderr, exit 2.
run bare.out bare.err "$VDKIT"
check "bare vdkit exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "bare vdkit prints the short usage on stderr" cmp -s "$SCRATCH/bare.err" "$SCRATCH/help.out"
check "bare vdkit prints nothing on stdout" [ ! -s "$SCRATCH/bare.out" ]
run hb.out hb.err "$VDKIT" help
check "help is --help (exit $rc)" bash -c "[ $rc -eq 0 ] && cmp -s '$SCRATCH/hb.out' '$SCRATCH/help.out'"

# The version, from CMake's project().
run v.out v.err "$VDKIT" --version
want_version=$(sed -n 's/^project(vdkit VERSION \([0-9.]*\).*/\1/p' "$VDKIT_SRC/CMakeLists.txt")
check "--version exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "--version prints 'vdkit $want_version'" [ "$(cat "$SCRATCH/v.out")" = "vdkit $want_version" ]
finish
