#!/bin/sh
# tests/fuzz/corpus_protocol.sh — TAP: replays tests/fuzz/corpus/protocol/ through fuzz_protocol.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" protocol
