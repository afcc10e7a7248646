#!/usr/bin/env bash
# Cargo's runner for this workspace's binaries (.cargo/config.toml). A test
# binary (under target/*/deps/) runs as usual; after it, the tests it skipped
# for want of a service or tool (p_chat_testkit::skip, which writes one
# "group<TAB>test<TAB>reason" line each) are summed up by group and reason,
# so that a skip never passes unnoticed among the "ok"s. Every other binary
# (`cargo run`) is started unchanged.
case "$1" in
*/deps/*) ;;
*) exec "$@" ;;
esac
P_CHAT_SKIPPED_LOG="$(mktemp)"
export P_CHAT_SKIPPED_LOG
"$@"
status=$?
if [ -s "$P_CHAT_SKIPPED_LOG" ]; then
    binary="$(basename "$1" | sed -E 's/-[0-9a-f]{16}$//')"
    echo "SKIPPED: $(wc -l <"$P_CHAT_SKIPPED_LOG") of the tests in $binary did not run (listed as ok above):"
    cut -f1,3 "$P_CHAT_SKIPPED_LOG" | sort | uniq -c | sed -E 's/^ *([0-9]+) ([^\t]*)\t/    \1 × \2: /'
fi
rm -f "$P_CHAT_SKIPPED_LOG"
exit "$status"
