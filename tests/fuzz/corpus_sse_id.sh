#!/bin/sh
# tests/fuzz/corpus_sse_id.sh — TAP: replays tests/fuzz/corpus/sse_id/ through fuzz_sse_id.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" sse_id
