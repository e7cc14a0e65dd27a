#!/usr/bin/env bash
# The differential run family by family: for each type family, SHARDIS_DIFF_COMMANDS random
# commands of that family only (default 200000) go to Debian's redis-server and to shardis
# (4 shards, so multi-key commands cross shards), and every reply and the final keyspace must
# match (tests/differential.rs). The default test mixes all families in one 200000-command
# run; this script gives each family its own full count, which takes minutes, so it lives here
# and not in the test suite.
#
#   bench/differential/families.sh [FAMILY...]   (default: the data type families below)
# Env: SHARDIS_DIFF_COMMANDS (per family), SHARDIS_SEED (one seed for every family),
#      SHARDIS_DIFF_SHARDS_TEST (differential_shardis_four_shards or ..._one_shard),
#      CARGO_TARGET_DIR as usual.
# Prints one line per family: name, commands, seed, result, seconds. Exit status 1 when any
# family found a difference (its full report is in the log named on its line).
set -uo pipefail
cd "$(dirname "$0")/../.."
families=("$@")
[[ ${#families[@]} -gt 0 ]] || families=(strings lists hashes sets zsets hll keys)
commands=${SHARDIS_DIFF_COMMANDS:-200000}
# Report up to 10 differences per family before failing (see tests/differential.rs).
export SHARDIS_DIFF_KEEP_GOING=${SHARDIS_DIFF_KEEP_GOING:-10}
test_name=${SHARDIS_DIFF_SHARDS_TEST:-differential_shardis_four_shards}
logdir=$(mktemp -d -t shardis-diff-families.XXXXXX)
cargo test --release --test differential --no-run >/dev/null 2>&1 || {
  echo "build failed" >&2
  exit 2
}
status=0
for f in "${families[@]}"; do
  log=$logdir/$f.log
  start=$(date +%s)
  SHARDIS_DIFF_FAMILIES=$f SHARDIS_DIFF_COMMANDS=$commands \
    cargo test --release --test differential "$test_name" -- --exact --nocapture >"$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  seed=$(grep -o 'seed[ =:]*[0-9]*' "$log" | head -n 1 | grep -o '[0-9]*$')
  if [[ $rc -eq 0 ]]; then result=ok; else result=DIFFERENCE; status=1; fi
  printf '%-8s commands=%s seed=%s %s %ss log=%s\n' "$f" "$commands" "${seed:-?}" "$result" "$secs" "$log"
done
exit $status
