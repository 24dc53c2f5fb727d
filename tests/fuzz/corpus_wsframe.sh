#!/bin/sh
# tests/fuzz/corpus_wsframe.sh — TAP: replays tests/fuzz/corpus/wsframe/ through fuzz_wsframe.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" wsframe
