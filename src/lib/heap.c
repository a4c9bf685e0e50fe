#include <twin/heap.h>

#include <twin/assert.h>

static bool before(const tw_heap_node *a, const tw_heap_node *b) {
    if (a->key != b->key) return a->key < b->key;
    return a->sequence < b->sequence;
}

static void place(tw_heap *heap, uint32_t index, tw_heap_node *node) {
    heap->nodes[index] = node;
    node->index = index;
}

static void sift_up(tw_heap *heap, uint32_t index) {
    tw_heap_node *node = heap->nodes[index];
    while (index > 0) {
        uint32_t parent = (index - 1) / 2;
        if (!before(node, heap->nodes[parent])) break;
        place(heap, index, heap->nodes[parent]);
        index = parent;
    }
    place(heap, index, node);
}

static void sift_down(tw_heap *heap, uint32_t index) {
    tw_heap_node *node = heap->nodes[index];
    for (;;) {
        uint32_t child = 2 * index + 1;
        if (child >= heap->count) break;
        if (child + 1 < heap->count && before(heap->nodes[child + 1], heap->nodes[child])) child++;
        if (!before(heap->nodes[child], node)) break;
        place(heap, index, heap->nodes[child]);
        index = child;
    }
    place(heap, index, node);
}

void tw_heap_init(tw_heap *heap, tw_heap_node **storage, uint32_t capacity) {
    TW_ASSERT(heap != NULL);
    TW_ASSERT(storage != NULL || capacity == 0);
    heap->nodes = storage;
    heap->count = 0;
    heap->capacity = capacity;
    heap->sequence_next = 0;
}

bool tw_heap_push(tw_heap *heap, tw_heap_node *node, uint64_t key) {
    TW_ASSERT(node != NULL);
    TW_ASSERT(!tw_heap_node_queued(node));
    if (heap->count == heap->capacity) return false;
    node->key = key;
    node->sequence = heap->sequence_next++;
    uint32_t index = heap->count++;
    place(heap, index, node);
    sift_up(heap, index);
    return true;
}

void tw_heap_remove(tw_heap *heap, tw_heap_node *node) {
    TW_ASSERT(node != NULL);
    if (!tw_heap_node_queued(node)) return;
    uint32_t index = node->index;
    TW_ASSERT(index < heap->count && heap->nodes[index] == node);
    node->index = TW_HEAP_INDEX_NONE;
    uint32_t last = --heap->count;
    if (index == last) return;
    tw_heap_node *moved = heap->nodes[last];
    place(heap, index, moved);
    sift_down(heap, index);
    sift_up(heap, moved->index);
}

tw_heap_node *tw_heap_pop(tw_heap *heap) {
    tw_heap_node *first = tw_heap_peek(heap);
    if (first != NULL) tw_heap_remove(heap, first);
    TW_ASSERT(first == NULL || !tw_heap_node_queued(first));
    return first;
}
