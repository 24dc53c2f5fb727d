#!/bin/sh
# tests/fuzz/corpus_trpc.sh — TAP: replays tests/fuzz/corpus/trpc/ through fuzz_trpc.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" trpc
