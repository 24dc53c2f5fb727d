#!/bin/sh
# tests/fuzz/corpus_config.sh — TAP: replays tests/fuzz/corpus/config/ through fuzz_config.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" config
