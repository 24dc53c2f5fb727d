/*
 * ntab.c — a string-keyed chained hash table (FNV-1a, power-of-two slots,
 * doubling at load 1) for the nats backend: the loop's channel table and
 * publishes in flight, the worker's subscriptions.
 *
 * Not thread-safe: each table belongs to one thread. Allocates its slots
 * and entries (a copy of each key); ntab_free() releases them and hands
 * every value to free_val.
 */
#include "nt.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static struct ntab_ent **find(struct ntab *t, const char *key)
{
	struct ntab_ent **pp;

	if (!t->size)
		return NULL;
	for (pp = &t->slot[hash(key) & (t->size - 1)]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key))
			return pp;
	return pp;
}

void *ntab_get(struct ntab *t, const char *key)
{
	struct ntab_ent **pp = find(t, key);

	return pp && *pp ? (*pp)->val : NULL;
}

static int grow(struct ntab *t)
{
	size_t size = t->size ? t->size * 2 : 16;
	struct ntab_ent **slot = calloc(size, sizeof(*slot));

	if (!slot)
		return FANOUT_ENOMEM;
	for (size_t i = 0; i < t->size; i++) {
		struct ntab_ent *e = t->slot[i], *n;
		for (; e; e = n) {
			size_t h = hash(e->key) & (size - 1);
			n = e->next;
			e->next = slot[h];
			slot[h] = e;
		}
	}
	free(t->slot);
	t->slot = slot;
	t->size = size;
	return 0;
}

int ntab_put(struct ntab *t, const char *key, void *val)
{
	struct ntab_ent **pp, *e;

	if (t->n >= t->size && grow(t))
		return FANOUT_ENOMEM;
	pp = find(t, key);
	if (*pp) {
		(*pp)->val = val;
		return 0;
	}
	e = malloc(sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return FANOUT_ENOMEM;
	}
	e->val = val;
	e->next = NULL;
	*pp = e;
	t->n++;
	return 0;
}

void *ntab_del(struct ntab *t, const char *key)
{
	struct ntab_ent **pp = find(t, key), *e;
	void *val;

	if (!pp || !*pp)
		return NULL;
	e = *pp;
	*pp = e->next;
	val = e->val;
	free(e->key);
	free(e);
	t->n--;
	return val;
}

void ntab_each(struct ntab *t, void (*fn)(const char *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < t->size; i++)
		for (struct ntab_ent *e = t->slot[i]; e; e = e->next)
			fn(e->key, e->val, arg);
}

void ntab_free(struct ntab *t, void (*free_val)(void *val))
{
	for (size_t i = 0; i < t->size; i++) {
		struct ntab_ent *e = t->slot[i], *n;
		for (; e; e = n) {
			n = e->next;
			if (free_val)
				free_val(e->val);
			free(e->key);
			free(e);
		}
	}
	free(t->slot);
	memset(t, 0, sizeof(*t));
}
