/*
 * fuzz_common.h — shared by the libFuzzer harnesses: CHECK() stops the run
 * with a trap (libFuzzer and the replay driver both report it as a crash)
 * when one of the code's own promises is broken. Ordinary bad input must
 * never reach a CHECK that fails.
 */
#ifndef FANOUT_FUZZ_COMMON_H
#define FANOUT_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
