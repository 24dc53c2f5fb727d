#!/bin/sh
# tests/fuzz/corpus_envelope.sh — TAP: replays tests/fuzz/corpus/envelope/ through fuzz_envelope.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" envelope
