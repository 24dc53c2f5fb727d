#!/bin/sh
# tests/fuzz/corpus_wsdeflate.sh — TAP: replays tests/fuzz/corpus/wsdeflate/ through fuzz_wsdeflate.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" wsdeflate
