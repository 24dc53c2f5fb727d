#!/bin/sh
# tests/fuzz/corpus_nats.sh — TAP: replays tests/fuzz/corpus/nats/ through fuzz_nats.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" nats
