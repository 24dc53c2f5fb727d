#!/bin/sh
# tests/fuzz/corpus_redis_addr.sh — TAP: replays tests/fuzz/corpus/redis_addr/ through fuzz_redis_addr.c.
exec "${SHELL:-/bin/sh}" "$(dirname "$0")/replay-corpus.sh" redis_addr
