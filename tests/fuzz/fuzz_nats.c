/*
 * fuzz_nats.c — libFuzzer harness for the nats backend's text functions
 * (plugins/nats/names.c). Input: byte 0 picks the function, the rest is
 * split at the first '\n' into a and b (NUL-terminated copies). Checks the
 * promises of names.h: a subject built from a prefix and a channel is valid
 * and maps back to the channel; stream subjects are valid subjects or
 * "<valid>.>" and none covers another; a violation's subject is non-empty;
 * an epoch is 1-64 letters and digits; a parsed u64 prints back to the same
 * digits; an accepted acknowledgement has seq > 0. Frees everything.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/plugin.h>

#include "fuzz_common.h"
#include "names.h"

static int is_stream_subject(const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[n - 1] == '>' && s[n - 2] == '.')
		return nn_subject_valid(s, n - 2);
	return nn_subject_valid(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a, *b, out[NN_SUBJECT_MAX], err[512];
	const char *nl;
	size_t la;
	int tls;

	if (size == 0)
		return 0;
	nl = memchr(data + 1, '\n', size - 1);
	la = nl ? (size_t)(nl - (const char *)data - 1) : size - 1;
	a = malloc(la + 1);
	b = malloc(size);
	if (!a || !b)
		goto out;
	memcpy(a, data + 1, la);
	a[la] = 0;
	if (nl) {
		size_t lb = size - 1 - la - 1;
		memcpy(b, nl + 1, lb);
		b[lb] = 0;
	} else {
		b[0] = 0;
	}
	switch (data[0] % 7) {
	case 0:
		if (nn_check_url(a, &tls, err, sizeof(err)) == 0)
			CHECK(strlen(a) > 0);
		else
			CHECK(strlen(err) > 0);
		break;
	case 1:
		/* channels are never empty */
		if (b[0] && nn_check_prefix(a, err, sizeof(err)) == 0 &&
		    nn_subject(a, b, out, sizeof(out)) == 0) {
			const char *ch = nn_channel(a, strlen(a), out);
			CHECK(nn_subject_valid(out, strlen(out)));
			CHECK(ch && strcmp(ch, b) == 0);
		}
		break;
	case 2: {
		const char *globs[16];
		size_t n = 0;
		char **list;
		size_t nl2;
		for (char *p = b, *q; n < 16 && p; p = q) {
			q = strchr(p, ',');
			if (q)
				*q++ = 0;
			globs[n++] = p;
		}
		if (nn_stream_subjects(a, globs, n, &list, &nl2, err, sizeof(err)) == 0) {
			for (size_t i = 0; i < nl2; i++) {
				CHECK(is_stream_subject(list[i]));
				for (size_t j = 0; j < nl2; j++)
					CHECK(i == j || strcmp(list[i], list[j]) != 0);
			}
			nn_free_list(list, nl2);
		}
		break;
	}
	case 3:
		if (nn_sub_violation(a, out, sizeof(out)))
			CHECK(out[0] != 0);
		break;
	case 4:
		if (nn_epoch(a, out, sizeof(out)) == 0) {
			size_t n = strlen(out);
			CHECK(n >= 1 && n <= 64);
			for (size_t i = 0; i < n; i++)
				CHECK(isalnum((unsigned char)out[i]));
		}
		break;
	case 5: {
		uint64_t v;
		if (nn_u64(a, la, &v) == 0) {
			char back[32];
			snprintf(back, sizeof(back), "%llu", (unsigned long long)v);
			/* leading zeros aside, the digits are the same number */
			const char *p = a;
			while (*p == '0' && p[1])
				p++;
			CHECK(strcmp(back, p) == 0);
		}
		break;
	}
	case 6: {
		uint64_t seq = 0;
		if (nn_parse_puback(a, la, &seq, err, sizeof(err)) == 0)
			CHECK(seq > 0);
		else
			CHECK(strlen(err) > 0);
		break;
	}
	}
out:
	free(a);
	free(b);
	return 0;
}
