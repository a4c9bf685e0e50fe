/* twin: an intrusive binary min-heap ordered by (key, sequence).
 *
 * Used by the sim's event queue and the loop's timers. Nodes are embedded in their
 * owners; ties on key are broken by the order of insertion (a sequence number), never
 * by address, so the order is deterministic. Storage is the caller's: no allocation. */
#ifndef TWIN_HEAP_H
#define TWIN_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_HEAP_INDEX_NONE UINT32_MAX

typedef struct tw_heap_node {
    uint64_t key;
    uint64_t sequence;
    uint32_t index; /* TW_HEAP_INDEX_NONE when not in a heap */
} tw_heap_node;

typedef struct tw_heap {
    tw_heap_node **nodes;
    uint32_t count;
    uint32_t capacity;
    uint64_t sequence_next;
} tw_heap;

#define TW_CONTAINER_OF(pointer, type, member) ((type *)((char *)(pointer) - offsetof(type, member)))

void tw_heap_init(tw_heap *heap, tw_heap_node **storage, uint32_t capacity);
static inline void tw_heap_node_init(tw_heap_node *node) { node->index = TW_HEAP_INDEX_NONE; }
static inline bool tw_heap_node_queued(const tw_heap_node *node) {
    return node->index != TW_HEAP_INDEX_NONE;
}
/* Returns false when the heap is full. The node must not be queued. */
bool tw_heap_push(tw_heap *heap, tw_heap_node *node, uint64_t key);
/* Removes a queued node; does nothing for a node that is not queued. */
void tw_heap_remove(tw_heap *heap, tw_heap_node *node);
/* The smallest node, or NULL. */
static inline tw_heap_node *tw_heap_peek(const tw_heap *heap) {
    return heap->count == 0 ? NULL : heap->nodes[0];
}
tw_heap_node *tw_heap_pop(tw_heap *heap);

#endif
