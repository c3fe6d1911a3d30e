# Helpers for the journal tests: file systems whose newest state is only in their jbd2 journal.

# journalize OLD NEW: logs every block in which NEW differs from OLD as one committed, un-checkpointed transaction
# in OLD's journal (debugfs journal_open/journal_write/journal_close), so OLD on disk stays as it was and only a
# journal replay gives NEW. Both are images of the same file system; NEW must not differ in the journal itself.
journalize() {
  local old=$1 new=$2 bs blocks data
  bs=$(dumpe2fs -h "$old" 2>/dev/null | sed -n 's/^Block size: *//p')
  blocks=$({ cmp -l "$old" "$new" || true; } | awk -v bs="$bs" '{print int(($1 - 1) / bs)}' | uniq | sort -un | paste -sd, -)
  [ -n "$blocks" ] || return 1
  data=$(mktemp "${TMPDIR:-/tmp}/journalize.XXXXXX")
  for b in ${blocks//,/ }; do dd if="$new" bs="$bs" skip="$b" count=1 status=none >>"$data"; done
  local rc=0
  printf 'jo\njw -b %s %s\njc\n' "$blocks" "$data" | debugfs -w -f - "$old" >/dev/null 2>&1 || rc=$?
  rm -f "$data"
  return $rc
}

# part_offset PARTS N: byte offset of partition N from make-guest's NAME.parts.
part_offset() { awk -v n="$2" '$1 == n {print $2}' "$1"; }
part_size() { awk -v n="$2" '$1 == n {print $3}' "$1"; }

# extract RAW OFFSET SIZE OUT / put_back RAW OFFSET IN: a partition out of a raw disk and back.
extract() { dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
put_back() { dd if="$3" of="$1" bs=1M oflag=seek_bytes seek="$2" conv=notrunc status=none; }
