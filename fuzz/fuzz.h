/* What every libFuzzer target shares. */
#ifndef MPROCD_FUZZ_H
#define MPROCD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Stops the run with a message libFuzzer saves the input for. */
#define CHECK(e) \
	do { \
		if (!(e)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #e); \
			abort(); \
		} \
	} while (0)

#endif
