#!/usr/bin/env bash
# run-one.sh HARNESS CORPUS SECONDS: replays the kept corpus, then fuzzes for SECONDS in a scratch copy so the
# checked-in corpus only changes when someone chooses to keep a finding. Exit non-zero on any crash, leak or hang.
set -euo pipefail
harness=$1 corpus=$2 seconds=$3
work=$(mktemp -d /tmp/vdkit-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/new" "$work/artifacts"
# Replay: each kept input once (regression for past findings).
if compgen -G "$corpus/*" >/dev/null; then
  "$harness" -runs=0 -timeout=20 -rss_limit_mb=2048 "$corpus"
fi
# Fuzz, bounded in time; new inputs go to the scratch folder.
"$harness" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=1048576 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/new" "$corpus" 2>&1 | tail -n 20
status=${PIPESTATUS[0]}
if compgen -G "$work/artifacts/*" >/dev/null; then
  mkdir -p /tmp/vdkit-fuzz-findings
  cp "$work"/artifacts/* /tmp/vdkit-fuzz-findings/
  echo "findings copied to /tmp/vdkit-fuzz-findings: $(ls "$work/artifacts")"
fi
exit "$status"
