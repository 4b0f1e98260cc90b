/*
 * heap: binary min-heap with index tracking.
 */
#include "config.h"

#include <stdlib.h>

#include "heap.h"

void
heap_init(struct heap *h)
{
	h->v = NULL;
	h->n = h->cap = 0;
}

void
heap_free(struct heap *h)
{
	free(h->v);
	heap_init(h);
}

static void
place(struct heap *h, size_t i, struct heap_node *node)
{
	h->v[i] = node;
	node->idx = i;
}

static void
sift_up(struct heap *h, size_t i)
{
	struct heap_node *node = h->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->key <= node->key)
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, node);
}

static void
sift_down(struct heap *h, size_t i)
{
	struct heap_node *node = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
			c++;
		if (node->key <= h->v[c]->key)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, node);
}

int
heap_push(struct heap *h, struct heap_node *node, int64_t key)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct heap_node **v = realloc(h->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	node->key = key;
	place(h, h->n++, node);
	sift_up(h, h->n - 1);
	return 0;
}

void
heap_remove(struct heap *h, struct heap_node *node)
{
	size_t i = node->idx;
	struct heap_node *moved;

	if (i == HEAP_NONE)
		return;
	node->idx = HEAP_NONE;
	if (--h->n == i)
		return;
	moved = h->v[h->n];
	place(h, i, moved);
	sift_down(h, i);
	sift_up(h, moved->idx);
}

void
heap_update(struct heap *h, struct heap_node *node, int64_t key)
{
	node->key = key;
	sift_down(h, node->idx);
	sift_up(h, node->idx);
}

struct heap_node *
heap_top(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}

struct heap_node *
heap_pop(struct heap *h)
{
	struct heap_node *top = heap_top(h);

	if (top != NULL)
		heap_remove(h, top);
	return top;
}
