#!/bin/sh
# tests/fuzz/corpus_token.sh — TAP: replays tests/fuzz/corpus/token/ through fuzz_token.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" token
