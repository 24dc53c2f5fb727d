#!/bin/sh
# tests/fuzz/corpus_http.sh — TAP: replays tests/fuzz/corpus/http/ through fuzz_http.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" http
