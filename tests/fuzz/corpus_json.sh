#!/bin/sh
# tests/fuzz/corpus_json.sh — TAP: replays tests/fuzz/corpus/json/ through fuzz_json.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" json
