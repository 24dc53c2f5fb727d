#!/bin/sh
# tests/fuzz/corpus_filetail.sh — TAP: replays tests/fuzz/corpus/filetail/ through fuzz_filetail.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" filetail
