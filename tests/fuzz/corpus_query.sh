#!/bin/sh
# tests/fuzz/corpus_query.sh — TAP: replays tests/fuzz/corpus/query/ through fuzz_query.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" query
