/* twin: the ledger, the server's state machine (see ledger.h).
 *
 * Storage: accounts and transfers live in arrays sized at init from the limits, in the
 * order they were created. Each array has an open-addressing hash table (linear probing,
 * a power-of-two capacity of at least twice the limit, so it is never more than half full)
 * from the 128-bit id to the object's index. Id 0 is never stored (it is rejected), so a
 * slot whose id is 0 is empty.
 *
 * Linked chains: an event applies at once, so later events of the batch see it. When an
 * event of a chain fails, the chain's earlier events, which all succeeded, are undone in
 * reverse order. The batch itself is the undo log: those events say exactly what was
 * created and which balances moved, and because undo runs last-in first-out, removing an
 * object is popping the end of its array and clearing its slot (linear probing returns to
 * the exact state before the insert, since nothing was inserted after it).
 *
 * Reporting an open chain (the batch's last event has the linked flag), as TigerBeetle
 * does: the last event fails with linked_event_chain_open (it is not validated); the first
 * event of the chain that broke a rule, if any, keeps its own code; every other event of the
 * chain fails with linked_event_failed. Nothing of the chain applies.
 *
 * Timestamps: event i of a batch gets base + i, base = max(now_ns, timestamp_last + 1),
 * whether it succeeds or fails. timestamp_last is then the timestamp of the last object the
 * batch created (unchanged if it created none), which is also what
 * tw_ledger_timestamp_last() reports. The next batch's base is above it, so created
 * objects' timestamps are unique and strictly increasing over the ledger's life; a failed
 * event's timestamp may be reused by a later batch, but it is never stored. */
#include <stdint.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/hash.h>
#include <twin/ledger.h>
#include <twin/os.h>

/* The table has at least this many slots per object it may hold: it stays at most half
 * full, so a probe always ends at an empty slot, and soon. */
#define LEDGER_TABLE_SLOTS_PER_OBJECT 2u
#define LEDGER_TABLE_CAPACITY_MIN 2u
/* An index into the object arrays fits in 32 bits: a limit is a uint32_t. */
#define LEDGER_INDEX_MISSING UINT32_MAX

/* The codes both operations share, at the same values. */
enum ledger_result_common {
    result_ok = 0,
    result_linked_event_failed = 1,
    result_linked_event_chain_open = 2,
};

_Static_assert((int)tw_create_account_ok == result_ok, "shared code");
_Static_assert((int)tw_create_transfer_ok == result_ok, "shared code");
_Static_assert((int)tw_create_account_linked_event_failed == result_linked_event_failed, "shared code");
_Static_assert((int)tw_create_transfer_linked_event_failed == result_linked_event_failed, "shared code");
_Static_assert((int)tw_create_account_linked_event_chain_open == result_linked_event_chain_open,
               "shared code");
_Static_assert((int)tw_create_transfer_linked_event_chain_open == result_linked_event_chain_open,
               "shared code");
_Static_assert(sizeof(tw_create_result) == 8, "a sparse result is 8 bytes on the wire");

static const uint16_t account_flags_known = tw_account_linked | tw_account_debits_must_not_exceed_credits |
                                            tw_account_credits_must_not_exceed_debits;
static const uint16_t account_flags_exclusive =
    tw_account_debits_must_not_exceed_credits | tw_account_credits_must_not_exceed_debits;
static const uint16_t transfer_flags_known = tw_transfer_linked;

/* ---- 128-bit ids ------------------------------------------------------------------------ */

static bool u128_zero(tw_u128 a) { return a.low == 0 && a.high == 0; }
static bool u128_max(tw_u128 a) { return a.low == UINT64_MAX && a.high == UINT64_MAX; }
static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }


static uint64_t u128_hash(tw_u128 id) { return tw_mix64(id.low ^ tw_mix64(id.high ^ 0x9e3779b97f4a7c15ULL)); }

/* ---- the id -> index table -------------------------------------------------------------- */

typedef struct table_slot {
    tw_u128 id; /* 0: empty */
    uint32_t index;
} table_slot;

typedef struct table {
    table_slot *slots;
    uint64_t capacity; /* a power of two */
    uint64_t used;
} table;

static bool table_init(table *t, uint32_t objects_max) {
    TW_ASSERT(t != NULL);
    TW_ASSERT(objects_max > 0);
    uint64_t wanted = (uint64_t)objects_max * LEDGER_TABLE_SLOTS_PER_OBJECT;
    uint64_t capacity = LEDGER_TABLE_CAPACITY_MIN;
    while (capacity < wanted) capacity *= 2;
    TW_ASSERT((capacity & (capacity - 1)) == 0 && capacity >= wanted);
    if (capacity > SIZE_MAX / sizeof(table_slot)) return false;
    *t = (table){.slots = tw_allocate((size_t)capacity * sizeof(table_slot)), .capacity = capacity};
    return t->slots != NULL;
}

static void table_deinit(table *t) {
    TW_ASSERT(t != NULL);
    if (t->slots != NULL) tw_free(t->slots);
    *t = (table){0};
}

/* The slot holding id, or else the empty slot where id would go. */
static uint64_t table_probe(const table *t, tw_u128 id) {
    TW_ASSERT(!u128_zero(id));
    TW_ASSERT(t->used < t->capacity); /* an empty slot ends every probe */
    uint64_t mask = t->capacity - 1;
    uint64_t slot = u128_hash(id) & mask;
    for (;;) {
        const table_slot *s = &t->slots[slot];
        if (u128_zero(s->id) || u128_equal(s->id, id)) return slot;
        slot = (slot + 1) & mask;
    }
}

static uint32_t table_find(const table *t, tw_u128 id) {
    const table_slot *s = &t->slots[table_probe(t, id)];
    if (u128_zero(s->id)) return LEDGER_INDEX_MISSING;
    TW_ASSERT(s->index != LEDGER_INDEX_MISSING);
    return s->index;
}

static void table_insert(table *t, tw_u128 id, uint32_t index) {
    TW_ASSERT(index != LEDGER_INDEX_MISSING);
    TW_ASSERT((t->used + 1) * LEDGER_TABLE_SLOTS_PER_OBJECT <= t->capacity);
    table_slot *s = &t->slots[table_probe(t, id)];
    TW_ASSERT_MSG(u128_zero(s->id), "table_insert: the id is already there");
    *s = (table_slot){.id = id, .index = index};
    t->used++;
}

/* Only for the id inserted last (and not yet removed): see the top of the file. */
static void table_remove_last(table *t, tw_u128 id, uint32_t index) {
    table_slot *s = &t->slots[table_probe(t, id)];
    TW_ASSERT_MSG(u128_equal(s->id, id), "table_remove_last: the id is not there");
    TW_ASSERT(s->index == index && t->used > 0);
    *s = (table_slot){0};
    t->used--;
}

/* ---- the ledger ------------------------------------------------------------------------- */

struct tw_ledger {
    tw_account *accounts;
    uint32_t accounts_count;
    uint32_t accounts_max;
    table accounts_by_id;

    tw_transfer *transfers;
    uint32_t transfers_count;
    uint32_t transfers_max;
    table transfers_by_id;

    uint64_t timestamp_last; /* of the last object created; 0 before any */
};

static void *allocate_array(uint32_t count, size_t size_bytes) {
    TW_ASSERT(count > 0 && size_bytes > 0);
    if (count > SIZE_MAX / size_bytes) return NULL;
    return tw_allocate((size_t)count * size_bytes);
}

tw_ledger_error tw_ledger_init(tw_ledger **ledger, uint32_t accounts_max, uint32_t transfers_max) {
    TW_ASSERT(ledger != NULL);
    *ledger = NULL;
    if (accounts_max == 0 || transfers_max == 0) return tw_ledger_invalid_limits;
    tw_ledger *l = tw_allocate(sizeof(*l));
    if (l == NULL) return tw_ledger_system_resources;
    l->accounts_max = accounts_max;
    l->transfers_max = transfers_max;
    l->accounts = allocate_array(accounts_max, sizeof(tw_account));
    l->transfers = allocate_array(transfers_max, sizeof(tw_transfer));
    bool tables = table_init(&l->accounts_by_id, accounts_max);
    tables = table_init(&l->transfers_by_id, transfers_max) && tables;
    if (l->accounts == NULL || l->transfers == NULL || !tables) {
        tw_ledger_deinit(l);
        return tw_ledger_system_resources;
    }
    TW_ASSERT(l->accounts_count == 0 && l->transfers_count == 0 && l->timestamp_last == 0);
    *ledger = l;
    return tw_ledger_ok;
}

void tw_ledger_deinit(tw_ledger *ledger) {
    TW_ASSERT(ledger != NULL);
    TW_ASSERT(ledger->accounts_count <= ledger->accounts_max);
    TW_ASSERT(ledger->transfers_count <= ledger->transfers_max);
    if (ledger->accounts != NULL) tw_free(ledger->accounts);
    if (ledger->transfers != NULL) tw_free(ledger->transfers);
    table_deinit(&ledger->accounts_by_id);
    table_deinit(&ledger->transfers_by_id);
    tw_free(ledger);
}

uint64_t tw_ledger_timestamp_last(const tw_ledger *ledger) {
    TW_ASSERT(ledger != NULL);
    return ledger->timestamp_last;
}

static tw_account *account_find(const tw_ledger *ledger, tw_u128 id) {
    uint32_t index = table_find(&ledger->accounts_by_id, id);
    if (index == LEDGER_INDEX_MISSING) return NULL;
    TW_ASSERT(index < ledger->accounts_count);
    TW_ASSERT(u128_equal(ledger->accounts[index].id, id));
    return &ledger->accounts[index];
}

static tw_transfer *transfer_find(const tw_ledger *ledger, tw_u128 id) {
    uint32_t index = table_find(&ledger->transfers_by_id, id);
    if (index == LEDGER_INDEX_MISSING) return NULL;
    TW_ASSERT(index < ledger->transfers_count);
    TW_ASSERT(u128_equal(ledger->transfers[index].id, id));
    return &ledger->transfers[index];
}

/* ---- create_accounts -------------------------------------------------------------------- */

static bool bytes_zero(const uint8_t *bytes, size_t size) {
    for (size_t i = 0; i < size; i++) {
        if (bytes[i] != 0) return false;
    }
    return true;
}

static tw_create_account_result account_check(const tw_ledger *ledger, const tw_account *a) {
    TW_ASSERT(ledger != NULL && a != NULL);
    if (a->timestamp != 0) return tw_create_account_timestamp_must_be_zero;
    if (!bytes_zero(a->reserved, sizeof(a->reserved))) return tw_create_account_reserved_field;
    if ((a->flags & ~account_flags_known) != 0) return tw_create_account_reserved_flag;
    if (u128_zero(a->id)) return tw_create_account_id_must_not_be_zero;
    if (u128_max(a->id)) return tw_create_account_id_must_not_be_int_max;
    if ((a->flags & account_flags_exclusive) == account_flags_exclusive) {
        return tw_create_account_flags_are_mutually_exclusive;
    }
    if (a->debits_posted != 0) return tw_create_account_debits_posted_must_be_zero;
    if (a->credits_posted != 0) return tw_create_account_credits_posted_must_be_zero;
    if (a->ledger == 0) return tw_create_account_ledger_must_not_be_zero;
    if (a->code == 0) return tw_create_account_code_must_not_be_zero;

    const tw_account *e = account_find(ledger, a->id);
    if (e != NULL) {
        if (e->flags != a->flags) return tw_create_account_exists_with_different_flags;
        if (e->ledger != a->ledger) return tw_create_account_exists_with_different_ledger;
        if (e->code != a->code) return tw_create_account_exists_with_different_code;
        return tw_create_account_exists;
    }
    TW_ASSERT(ledger->accounts_count <= ledger->accounts_max);
    if (ledger->accounts_count == ledger->accounts_max) return tw_create_account_too_many_accounts;
    return tw_create_account_ok;
}

static uint32_t account_create(tw_ledger *ledger, const void *events, uint32_t index, uint64_t timestamp) {
    const tw_account *a = (const tw_account *)events + index;
    tw_create_account_result result = account_check(ledger, a);
    if (result != tw_create_account_ok) return result;

    TW_ASSERT(timestamp > ledger->timestamp_last);
    uint32_t slot = ledger->accounts_count++;
    tw_account *created = &ledger->accounts[slot];
    *created = *a;
    created->timestamp = timestamp;
    table_insert(&ledger->accounts_by_id, a->id, slot);
    return tw_create_account_ok;
}

static bool account_linked(const void *events, uint32_t index) {
    return (((const tw_account *)events)[index].flags & tw_account_linked) != 0;
}

/* Undoes events [first, end), which all created their account, last first. */
static void accounts_rollback(tw_ledger *ledger, const void *events, uint32_t first, uint32_t end) {
    TW_ASSERT(first <= end);
    TW_ASSERT(end - first <= ledger->accounts_count);
    for (uint32_t i = end; i > first; i--) {
        const tw_account *a = (const tw_account *)events + (i - 1);
        uint32_t slot = ledger->accounts_count - 1;
        TW_ASSERT(u128_equal(ledger->accounts[slot].id, a->id));
        table_remove_last(&ledger->accounts_by_id, a->id, slot);
        ledger->accounts[slot] = (tw_account){0};
        ledger->accounts_count = slot;
    }
}

/* ---- create_transfers ------------------------------------------------------------------- */

static tw_create_transfer_result transfer_check(const tw_ledger *ledger, const tw_transfer *t,
                                                tw_account **debit_out, tw_account **credit_out) {
    TW_ASSERT(ledger != NULL && t != NULL);
    TW_ASSERT(debit_out != NULL && credit_out != NULL);
    if (t->timestamp != 0) return tw_create_transfer_timestamp_must_be_zero;
    if (t->reserved != 0) return tw_create_transfer_reserved_field;
    if ((t->flags & ~transfer_flags_known) != 0) return tw_create_transfer_reserved_flag;
    if (u128_zero(t->id)) return tw_create_transfer_id_must_not_be_zero;
    if (u128_max(t->id)) return tw_create_transfer_id_must_not_be_int_max;
    if (u128_zero(t->debit_account_id)) return tw_create_transfer_debit_account_id_must_not_be_zero;
    if (u128_max(t->debit_account_id)) return tw_create_transfer_debit_account_id_must_not_be_int_max;
    if (u128_zero(t->credit_account_id)) return tw_create_transfer_credit_account_id_must_not_be_zero;
    if (u128_max(t->credit_account_id)) return tw_create_transfer_credit_account_id_must_not_be_int_max;
    if (u128_equal(t->debit_account_id, t->credit_account_id)) {
        return tw_create_transfer_accounts_must_be_different;
    }
    if (t->ledger == 0) return tw_create_transfer_ledger_must_not_be_zero;
    if (t->code == 0) return tw_create_transfer_code_must_not_be_zero;
    if (t->amount == 0) return tw_create_transfer_amount_must_not_be_zero;

    tw_account *debit = account_find(ledger, t->debit_account_id);
    if (debit == NULL) return tw_create_transfer_debit_account_not_found;
    tw_account *credit = account_find(ledger, t->credit_account_id);
    if (credit == NULL) return tw_create_transfer_credit_account_not_found;
    TW_ASSERT(debit != credit);
    if (debit->ledger != credit->ledger) return tw_create_transfer_accounts_must_have_the_same_ledger;
    if (t->ledger != debit->ledger) return tw_create_transfer_transfer_must_have_the_same_ledger_as_accounts;

    /* An existing transfer is reported before the balance checks: it moves nothing. */
    const tw_transfer *e = transfer_find(ledger, t->id);
    if (e != NULL) {
        if (!u128_equal(e->debit_account_id, t->debit_account_id)) {
            return tw_create_transfer_exists_with_different_debit_account_id;
        }
        if (!u128_equal(e->credit_account_id, t->credit_account_id)) {
            return tw_create_transfer_exists_with_different_credit_account_id;
        }
        if (e->amount != t->amount) return tw_create_transfer_exists_with_different_amount;
        if (e->flags != t->flags) return tw_create_transfer_exists_with_different_flags;
        /* Same debit account, whose ledger both passed the check above: the same ledger
         * (so exists_with_different_ledger is never produced; see ledger.h). */
        TW_ASSERT(e->ledger == t->ledger && e->ledger == debit->ledger);
        if (e->code != t->code) return tw_create_transfer_exists_with_different_code;
        return tw_create_transfer_exists;
    }

    if (t->amount > UINT64_MAX - debit->debits_posted) return tw_create_transfer_overflows_debits_posted;
    if (t->amount > UINT64_MAX - credit->credits_posted) return tw_create_transfer_overflows_credits_posted;
    if ((debit->flags & tw_account_debits_must_not_exceed_credits) != 0 &&
        debit->debits_posted + t->amount > debit->credits_posted) {
        return tw_create_transfer_exceeds_credits;
    }
    if ((credit->flags & tw_account_credits_must_not_exceed_debits) != 0 &&
        credit->credits_posted + t->amount > credit->debits_posted) {
        return tw_create_transfer_exceeds_debits;
    }
    TW_ASSERT(ledger->transfers_count <= ledger->transfers_max);
    if (ledger->transfers_count == ledger->transfers_max) return tw_create_transfer_too_many_transfers;

    *debit_out = debit;
    *credit_out = credit;
    return tw_create_transfer_ok;
}

static uint32_t transfer_create(tw_ledger *ledger, const void *events, uint32_t index, uint64_t timestamp) {
    const tw_transfer *t = (const tw_transfer *)events + index;
    tw_account *debit = NULL;
    tw_account *credit = NULL;
    tw_create_transfer_result result = transfer_check(ledger, t, &debit, &credit);
    if (result != tw_create_transfer_ok) return result;

    TW_ASSERT(debit != NULL && credit != NULL);
    TW_ASSERT(timestamp > ledger->timestamp_last);
    uint32_t slot = ledger->transfers_count++;
    tw_transfer *created = &ledger->transfers[slot];
    *created = *t;
    created->timestamp = timestamp;
    table_insert(&ledger->transfers_by_id, t->id, slot);
    debit->debits_posted += t->amount;
    credit->credits_posted += t->amount;
    return tw_create_transfer_ok;
}

static bool transfer_linked(const void *events, uint32_t index) {
    return (((const tw_transfer *)events)[index].flags & tw_transfer_linked) != 0;
}

/* Undoes events [first, end), which all created their transfer, last first. */
static void transfers_rollback(tw_ledger *ledger, const void *events, uint32_t first, uint32_t end) {
    TW_ASSERT(first <= end);
    TW_ASSERT(end - first <= ledger->transfers_count);
    for (uint32_t i = end; i > first; i--) {
        const tw_transfer *t = (const tw_transfer *)events + (i - 1);
        uint32_t slot = ledger->transfers_count - 1;
        TW_ASSERT(u128_equal(ledger->transfers[slot].id, t->id));
        tw_account *debit = account_find(ledger, t->debit_account_id);
        tw_account *credit = account_find(ledger, t->credit_account_id);
        TW_ASSERT(debit != NULL && credit != NULL);
        TW_ASSERT(debit->debits_posted >= t->amount && credit->credits_posted >= t->amount);
        debit->debits_posted -= t->amount;
        credit->credits_posted -= t->amount;
        table_remove_last(&ledger->transfers_by_id, t->id, slot);
        ledger->transfers[slot] = (tw_transfer){0};
        ledger->transfers_count = slot;
    }
}

/* ---- batches and linked chains, for both operations -------------------------------------- */

typedef struct batch_operation {
    bool (*linked)(const void *events, uint32_t index);
    /* Validates event index and, if it passes, applies it; returns its result code. */
    uint32_t (*create)(tw_ledger *ledger, const void *events, uint32_t index, uint64_t timestamp);
    void (*rollback)(tw_ledger *ledger, const void *events, uint32_t first, uint32_t end);
} batch_operation;

static const batch_operation batch_accounts = {
    .linked = account_linked, .create = account_create, .rollback = accounts_rollback};
static const batch_operation batch_transfers = {
    .linked = transfer_linked, .create = transfer_create, .rollback = transfers_rollback};

static uint32_t batch_execute(tw_ledger *ledger, uint64_t now_ns, const void *events, uint32_t count,
                              tw_create_result *results, const batch_operation *operation) {
    TW_ASSERT(ledger != NULL && operation != NULL);
    TW_ASSERT(count == 0 || (events != NULL && results != NULL));
    if (count == 0) return 0;

    TW_ASSERT_MSG(ledger->timestamp_last < UINT64_MAX, "ledger: timestamps exhausted");
    uint64_t base = now_ns > ledger->timestamp_last ? now_ns : ledger->timestamp_last + 1;
    TW_ASSERT_MSG(base <= UINT64_MAX - (count - 1), "ledger: the batch's timestamps would overflow");

    uint32_t results_count = 0;
    bool chain_open = false;   /* inside a chain (some event since chain_first was linked) */
    bool chain_broken = false; /* an event of the open chain failed: the rest fail too */
    uint32_t chain_first = 0;
    for (uint32_t i = 0; i < count; i++) {
        bool linked = operation->linked(events, i);
        if (linked && !chain_open) {
            TW_ASSERT(!chain_broken);
            chain_open = true;
            chain_first = i;
        }

        uint32_t result;
        if (linked && i == count - 1) {
            result = result_linked_event_chain_open; /* not validated: it cannot apply */
        } else if (chain_broken) {
            result = result_linked_event_failed;
        } else {
            result = operation->create(ledger, events, i, base + i);
        }

        if (result != result_ok) {
            if (chain_open && !chain_broken) {
                /* The chain breaks here: undo its earlier events, which all succeeded. */
                chain_broken = true;
                operation->rollback(ledger, events, chain_first, i);
                for (uint32_t j = chain_first; j < i; j++) {
                    results[results_count++] =
                        (tw_create_result){.index = j, .result = result_linked_event_failed};
                }
            } else if (chain_open) {
                TW_ASSERT(result == result_linked_event_failed || result == result_linked_event_chain_open);
            }
            TW_ASSERT(results_count < count);
            results[results_count++] = (tw_create_result){.index = i, .result = result};
        }

        if (chain_open && (!linked || result == result_linked_event_chain_open)) {
            chain_open = false;
            chain_broken = false;
        }
    }
    TW_ASSERT(!chain_open && !chain_broken);
    TW_ASSERT(results_count <= count);

    /* timestamp_last: the last event that is not among the (ascending) failures, if any. */
    uint32_t failed = results_count;
    for (uint32_t i = count; i > 0; i--) {
        if (failed > 0 && results[failed - 1].index == i - 1) {
            TW_ASSERT(failed == 1 || results[failed - 2].index < results[failed - 1].index);
            failed--;
            continue;
        }
        TW_ASSERT(base + (i - 1) > ledger->timestamp_last);
        ledger->timestamp_last = base + (i - 1);
        break;
    }
    return results_count;
}

uint32_t tw_ledger_create_accounts(tw_ledger *ledger, uint64_t now_ns, const tw_account *events,
                                   uint32_t count, tw_create_result *results) {
    TW_ASSERT(ledger != NULL);
    uint32_t accounts_before = ledger->accounts_count;
    uint32_t failed = batch_execute(ledger, now_ns, events, count, results, &batch_accounts);
    TW_ASSERT(ledger->accounts_count - accounts_before == count - failed);
    return failed;
}

uint32_t tw_ledger_create_transfers(tw_ledger *ledger, uint64_t now_ns, const tw_transfer *events,
                                    uint32_t count, tw_create_result *results) {
    TW_ASSERT(ledger != NULL);
    uint32_t transfers_before = ledger->transfers_count;
    uint32_t failed = batch_execute(ledger, now_ns, events, count, results, &batch_transfers);
    TW_ASSERT(ledger->transfers_count - transfers_before == count - failed);
    return failed;
}

/* ---- lookups ---------------------------------------------------------------------------- */

uint32_t tw_ledger_lookup_accounts(const tw_ledger *ledger, const tw_u128 *ids, uint32_t count,
                                   tw_account *results) {
    TW_ASSERT(ledger != NULL);
    TW_ASSERT(count == 0 || (ids != NULL && results != NULL));
    uint32_t found = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (u128_zero(ids[i])) continue; /* never stored; the table does not take 0 */
        const tw_account *a = account_find(ledger, ids[i]);
        if (a != NULL) results[found++] = *a;
    }
    TW_ASSERT(found <= count);
    return found;
}

uint32_t tw_ledger_lookup_transfers(const tw_ledger *ledger, const tw_u128 *ids, uint32_t count,
                                    tw_transfer *results) {
    TW_ASSERT(ledger != NULL);
    TW_ASSERT(count == 0 || (ids != NULL && results != NULL));
    uint32_t found = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (u128_zero(ids[i])) continue;
        const tw_transfer *t = transfer_find(ledger, ids[i]);
        if (t != NULL) results[found++] = *t;
    }
    TW_ASSERT(found <= count);
    return found;
}

/* ---- names ------------------------------------------------------------------------------ */

const char *tw_create_account_result_name(tw_create_account_result result) {
    switch (result) {
    case tw_create_account_ok: return "ok";
    case tw_create_account_linked_event_failed: return "linked_event_failed";
    case tw_create_account_linked_event_chain_open: return "linked_event_chain_open";
    case tw_create_account_timestamp_must_be_zero: return "timestamp_must_be_zero";
    case tw_create_account_reserved_field: return "reserved_field";
    case tw_create_account_reserved_flag: return "reserved_flag";
    case tw_create_account_id_must_not_be_zero: return "id_must_not_be_zero";
    case tw_create_account_id_must_not_be_int_max: return "id_must_not_be_int_max";
    case tw_create_account_flags_are_mutually_exclusive: return "flags_are_mutually_exclusive";
    case tw_create_account_debits_posted_must_be_zero: return "debits_posted_must_be_zero";
    case tw_create_account_credits_posted_must_be_zero: return "credits_posted_must_be_zero";
    case tw_create_account_ledger_must_not_be_zero: return "ledger_must_not_be_zero";
    case tw_create_account_code_must_not_be_zero: return "code_must_not_be_zero";
    case tw_create_account_exists_with_different_flags: return "exists_with_different_flags";
    case tw_create_account_exists_with_different_ledger: return "exists_with_different_ledger";
    case tw_create_account_exists_with_different_code: return "exists_with_different_code";
    case tw_create_account_exists: return "exists";
    case tw_create_account_too_many_accounts: return "too_many_accounts";
    }
    return "unknown";
}

const char *tw_create_transfer_result_name(tw_create_transfer_result result) {
    switch (result) {
    case tw_create_transfer_ok: return "ok";
    case tw_create_transfer_linked_event_failed: return "linked_event_failed";
    case tw_create_transfer_linked_event_chain_open: return "linked_event_chain_open";
    case tw_create_transfer_timestamp_must_be_zero: return "timestamp_must_be_zero";
    case tw_create_transfer_reserved_field: return "reserved_field";
    case tw_create_transfer_reserved_flag: return "reserved_flag";
    case tw_create_transfer_id_must_not_be_zero: return "id_must_not_be_zero";
    case tw_create_transfer_id_must_not_be_int_max: return "id_must_not_be_int_max";
    case tw_create_transfer_debit_account_id_must_not_be_zero: return "debit_account_id_must_not_be_zero";
    case tw_create_transfer_debit_account_id_must_not_be_int_max: return "debit_account_id_must_not_be_int_max";
    case tw_create_transfer_credit_account_id_must_not_be_zero: return "credit_account_id_must_not_be_zero";
    case tw_create_transfer_credit_account_id_must_not_be_int_max: return "credit_account_id_must_not_be_int_max";
    case tw_create_transfer_accounts_must_be_different: return "accounts_must_be_different";
    case tw_create_transfer_ledger_must_not_be_zero: return "ledger_must_not_be_zero";
    case tw_create_transfer_code_must_not_be_zero: return "code_must_not_be_zero";
    case tw_create_transfer_amount_must_not_be_zero: return "amount_must_not_be_zero";
    case tw_create_transfer_debit_account_not_found: return "debit_account_not_found";
    case tw_create_transfer_credit_account_not_found: return "credit_account_not_found";
    case tw_create_transfer_accounts_must_have_the_same_ledger: return "accounts_must_have_the_same_ledger";
    case tw_create_transfer_transfer_must_have_the_same_ledger_as_accounts:
        return "transfer_must_have_the_same_ledger_as_accounts";
    case tw_create_transfer_exists_with_different_debit_account_id:
        return "exists_with_different_debit_account_id";
    case tw_create_transfer_exists_with_different_credit_account_id:
        return "exists_with_different_credit_account_id";
    case tw_create_transfer_exists_with_different_amount: return "exists_with_different_amount";
    case tw_create_transfer_exists_with_different_flags: return "exists_with_different_flags";
    case tw_create_transfer_exists_with_different_ledger: return "exists_with_different_ledger";
    case tw_create_transfer_exists_with_different_code: return "exists_with_different_code";
    case tw_create_transfer_exists: return "exists";
    case tw_create_transfer_overflows_debits_posted: return "overflows_debits_posted";
    case tw_create_transfer_overflows_credits_posted: return "overflows_credits_posted";
    case tw_create_transfer_exceeds_credits: return "exceeds_credits";
    case tw_create_transfer_exceeds_debits: return "exceeds_debits";
    case tw_create_transfer_too_many_transfers: return "too_many_transfers";
    }
    return "unknown";
}
