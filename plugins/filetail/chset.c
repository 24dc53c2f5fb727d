/*
 * chset.c — the filetail backend's set of channel names (FNV-1a, chained,
 * doubling): the channels with local subscribers, and those whose
 * subscribe waits for the line count (start = end).
 *
 * Loop thread only. Allocates its slots and one node per name;
 * chset_free() releases them.
 */
#include <stdlib.h>
#include <string.h>

#include <fanout/plugin.h>

#include "ft.h"

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct chnode **chset_find(struct chset *cs, const char *name, uint32_t h)
{
	struct chnode **pp = &cs->slot[h & (cs->nslots - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->name, name) == 0)
			break;
	return pp;
}

int chset_has(struct chset *cs, const char *name)
{
	if (!cs->count)
		return 0;
	return *chset_find(cs, name, fnv1a(name)) != NULL;
}

int chset_add(struct chset *cs, const char *name)
{
	uint32_t h = fnv1a(name);
	struct chnode **pp, *n;
	size_t len = strlen(name);

	if (cs->count >= cs->nslots) {
		size_t nn = cs->nslots ? cs->nslots * 2 : 16;
		struct chnode **ns = calloc(nn, sizeof(*ns));
		if (!ns)
			return FANOUT_ENOMEM;
		for (size_t i = 0; i < cs->nslots; i++) {
			while (cs->slot[i]) {
				n = cs->slot[i];
				cs->slot[i] = n->next;
				n->next = ns[n->hash & (nn - 1)];
				ns[n->hash & (nn - 1)] = n;
			}
		}
		free(cs->slot);
		cs->slot = ns;
		cs->nslots = nn;
	}
	pp = chset_find(cs, name, h);
	if (*pp)
		return 0;
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return FANOUT_ENOMEM;
	n->next = NULL;
	n->hash = h;
	memcpy(n->name, name, len + 1);
	*pp = n;
	cs->count++;
	return 0;
}

void chset_del(struct chset *cs, const char *name)
{
	struct chnode **pp, *n;

	if (!cs->count)
		return;
	pp = chset_find(cs, name, fnv1a(name));
	if (!*pp)
		return;
	n = *pp;
	*pp = n->next;
	free(n);
	cs->count--;
}

void chset_free(struct chset *cs)
{
	for (size_t i = 0; i < cs->nslots; i++) {
		while (cs->slot[i]) {
			struct chnode *n = cs->slot[i];
			cs->slot[i] = n->next;
			free(n);
		}
	}
	free(cs->slot);
	memset(cs, 0, sizeof(*cs));
}

void chset_each(struct chset *cs, void (*fn)(const char *name, void *arg), void *arg)
{
	for (size_t i = 0; i < cs->nslots; i++)
		for (struct chnode *n = cs->slot[i]; n; n = n->next)
			fn(n->name, arg);
}
