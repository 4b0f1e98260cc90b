/*
 * heap: a binary min-heap of embedded nodes, keyed by a 64-bit time.
 *
 * Items embed a struct heap_node; the heap stores pointers and keeps each
 * node's index, so that remove and update are O(log n) without a search.
 * Used for every deadline in mandrill: no periodic scan over all leases.
 */
#ifndef MANDRILL_HEAP_H
#define MANDRILL_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE ((size_t)-1)

struct heap_node {
	int64_t		 key;
	size_t		 idx;	/* HEAP_NONE when not in a heap */
};

struct heap {
	struct heap_node **v;
	size_t		 n;
	size_t		 cap;
};

void heap_init(struct heap *h);
void heap_free(struct heap *h);
int heap_push(struct heap *h, struct heap_node *node, int64_t key);
void heap_remove(struct heap *h, struct heap_node *node);
void heap_update(struct heap *h, struct heap_node *node, int64_t key);
struct heap_node *heap_top(const struct heap *h);
struct heap_node *heap_pop(struct heap *h);

static inline int
heap_contains(const struct heap_node *node)
{
	return node->idx != HEAP_NONE;
}

#endif
