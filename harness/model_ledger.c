/* twin harness: the ledger's reference model (see model_ledger.h). */
#include "model_ledger.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>

#define MODEL_ACCOUNT_FLAGS_KNOWN                                                             \
    (tw_account_linked | tw_account_debits_must_not_exceed_credits |                          \
     tw_account_credits_must_not_exceed_debits)
#define MODEL_TRANSFER_FLAGS_KNOWN tw_transfer_linked
/* Both operations share these codes' values (ledger.h). */
#define MODEL_RESULT_OK 0u
#define MODEL_RESULT_LINKED_EVENT_FAILED 1u
#define MODEL_RESULT_LINKED_EVENT_CHAIN_OPEN 2u
#define MODEL_CREATE_RESULT_SIZE ((uint32_t)sizeof(tw_create_result))
#define MODEL_ID_SIZE ((uint32_t)sizeof(tw_u128))

_Static_assert((int)tw_create_account_linked_event_failed == MODEL_RESULT_LINKED_EVENT_FAILED &&
                   (int)tw_create_transfer_linked_event_failed == MODEL_RESULT_LINKED_EVENT_FAILED,
               "one linked_event_failed");
_Static_assert((int)tw_create_account_linked_event_chain_open == MODEL_RESULT_LINKED_EVENT_CHAIN_OPEN &&
                   (int)tw_create_transfer_linked_event_chain_open == MODEL_RESULT_LINKED_EVENT_CHAIN_OPEN,
               "one linked_event_chain_open");
_Static_assert((int)tw_account_linked == (int)tw_transfer_linked, "one linked bit");

struct tw_model_ledger {
    tw_account *accounts; /* in creation order */
    uint32_t accounts_count;
    uint32_t accounts_max;
    tw_transfer *transfers; /* in creation order */
    uint32_t transfers_count;
    uint32_t transfers_max;
    uint64_t timestamp_last; /* of the last object created; 0 before any */
};

/* What a chain that fails goes back to. */
typedef struct model_snapshot {
    uint32_t accounts_count;
    uint32_t transfers_count;
    uint64_t timestamp_last;
} model_snapshot;

static bool id_is_zero(tw_u128 id) { return id.low == 0 && id.high == 0; }
static bool id_is_max(tw_u128 id) { return id.low == UINT64_MAX && id.high == UINT64_MAX; }
static bool id_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

tw_model_ledger *tw_model_ledger_new(uint32_t accounts_max, uint32_t transfers_max) {
    TW_ASSERT(accounts_max > 0);
    TW_ASSERT(transfers_max > 0);
    tw_model_ledger *model = calloc(1, sizeof(*model));
    if (model == NULL) return NULL;
    model->accounts = calloc(accounts_max, sizeof(tw_account));
    model->transfers = calloc(transfers_max, sizeof(tw_transfer));
    model->accounts_max = accounts_max;
    model->transfers_max = transfers_max;
    if (model->accounts == NULL || model->transfers == NULL) {
        tw_model_ledger_free(model);
        return NULL;
    }
    return model;
}

void tw_model_ledger_free(tw_model_ledger *model) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(model->accounts_count <= model->accounts_max);
    TW_ASSERT(model->transfers_count <= model->transfers_max);
    free(model->accounts);
    free(model->transfers);
    free(model);
}

static tw_account *account_find(tw_model_ledger *model, tw_u128 id) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(model->accounts_count <= model->accounts_max);
    for (uint32_t i = 0; i < model->accounts_count; i++) {
        if (id_equal(model->accounts[i].id, id)) return &model->accounts[i];
    }
    return NULL;
}

static tw_transfer *transfer_find(tw_model_ledger *model, tw_u128 id) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(model->transfers_count <= model->transfers_max);
    for (uint32_t i = 0; i < model->transfers_count; i++) {
        if (id_equal(model->transfers[i].id, id)) return &model->transfers[i];
    }
    return NULL;
}

/* The rules of ledger.h, in its order; creates the account when it breaks none. */
static uint32_t account_create(tw_model_ledger *model, const tw_account *a, uint64_t timestamp) {
    TW_ASSERT(model != NULL && a != NULL);
    TW_ASSERT(timestamp > model->timestamp_last);
    bool reserved_zero = true;
    for (uint32_t i = 0; i < sizeof(a->reserved); i++) {
        if (a->reserved[i] != 0) reserved_zero = false;
    }
    bool debits_limited = (a->flags & tw_account_debits_must_not_exceed_credits) != 0;
    bool credits_limited = (a->flags & tw_account_credits_must_not_exceed_debits) != 0;

    if (a->timestamp != 0) return tw_create_account_timestamp_must_be_zero;
    if (!reserved_zero) return tw_create_account_reserved_field;
    if ((a->flags & ~MODEL_ACCOUNT_FLAGS_KNOWN) != 0) return tw_create_account_reserved_flag;
    if (id_is_zero(a->id)) return tw_create_account_id_must_not_be_zero;
    if (id_is_max(a->id)) return tw_create_account_id_must_not_be_int_max;
    if (debits_limited && credits_limited) return tw_create_account_flags_are_mutually_exclusive;
    if (a->debits_posted != 0) return tw_create_account_debits_posted_must_be_zero;
    if (a->credits_posted != 0) return tw_create_account_credits_posted_must_be_zero;
    if (a->ledger == 0) return tw_create_account_ledger_must_not_be_zero;
    if (a->code == 0) return tw_create_account_code_must_not_be_zero;
    const tw_account *e = account_find(model, a->id);
    if (e != NULL && e->flags != a->flags) return tw_create_account_exists_with_different_flags;
    if (e != NULL && e->ledger != a->ledger) return tw_create_account_exists_with_different_ledger;
    if (e != NULL && e->code != a->code) return tw_create_account_exists_with_different_code;
    if (e != NULL) return tw_create_account_exists;
    if (model->accounts_count == model->accounts_max) return tw_create_account_too_many_accounts;

    tw_account *created = &model->accounts[model->accounts_count++];
    *created = *a;
    created->timestamp = timestamp;
    model->timestamp_last = timestamp;
    return MODEL_RESULT_OK;
}

/* The rules of ledger.h, in its order; creates the transfer and moves the balances when it
 * breaks none. */
static uint32_t transfer_create(tw_model_ledger *model, const tw_transfer *t, uint64_t timestamp) {
    TW_ASSERT(model != NULL && t != NULL);
    TW_ASSERT(timestamp > model->timestamp_last);
    if (t->timestamp != 0) return tw_create_transfer_timestamp_must_be_zero;
    if (t->reserved != 0) return tw_create_transfer_reserved_field;
    if ((t->flags & ~MODEL_TRANSFER_FLAGS_KNOWN) != 0) return tw_create_transfer_reserved_flag;
    if (id_is_zero(t->id)) return tw_create_transfer_id_must_not_be_zero;
    if (id_is_max(t->id)) return tw_create_transfer_id_must_not_be_int_max;
    if (id_is_zero(t->debit_account_id)) return tw_create_transfer_debit_account_id_must_not_be_zero;
    if (id_is_max(t->debit_account_id)) return tw_create_transfer_debit_account_id_must_not_be_int_max;
    if (id_is_zero(t->credit_account_id)) return tw_create_transfer_credit_account_id_must_not_be_zero;
    if (id_is_max(t->credit_account_id)) return tw_create_transfer_credit_account_id_must_not_be_int_max;
    if (id_equal(t->debit_account_id, t->credit_account_id)) {
        return tw_create_transfer_accounts_must_be_different;
    }
    if (t->ledger == 0) return tw_create_transfer_ledger_must_not_be_zero;
    if (t->code == 0) return tw_create_transfer_code_must_not_be_zero;
    if (t->amount == 0) return tw_create_transfer_amount_must_not_be_zero;
    tw_account *debit = account_find(model, t->debit_account_id);
    tw_account *credit = account_find(model, t->credit_account_id);
    if (debit == NULL) return tw_create_transfer_debit_account_not_found;
    if (credit == NULL) return tw_create_transfer_credit_account_not_found;
    if (debit->ledger != credit->ledger) return tw_create_transfer_accounts_must_have_the_same_ledger;
    if (t->ledger != debit->ledger) return tw_create_transfer_transfer_must_have_the_same_ledger_as_accounts;
    const tw_transfer *e = transfer_find(model, t->id);
    if (e != NULL && !id_equal(e->debit_account_id, t->debit_account_id)) {
        return tw_create_transfer_exists_with_different_debit_account_id;
    }
    if (e != NULL && !id_equal(e->credit_account_id, t->credit_account_id)) {
        return tw_create_transfer_exists_with_different_credit_account_id;
    }
    if (e != NULL && e->amount != t->amount) return tw_create_transfer_exists_with_different_amount;
    if (e != NULL && e->flags != t->flags) return tw_create_transfer_exists_with_different_flags;
    if (e != NULL && e->ledger != t->ledger) return tw_create_transfer_exists_with_different_ledger;
    if (e != NULL && e->code != t->code) return tw_create_transfer_exists_with_different_code;
    if (e != NULL) return tw_create_transfer_exists;
    if (debit->debits_posted > UINT64_MAX - t->amount) return tw_create_transfer_overflows_debits_posted;
    if (credit->credits_posted > UINT64_MAX - t->amount) return tw_create_transfer_overflows_credits_posted;
    if ((debit->flags & tw_account_debits_must_not_exceed_credits) != 0 &&
        debit->debits_posted + t->amount > debit->credits_posted) {
        return tw_create_transfer_exceeds_credits;
    }
    if ((credit->flags & tw_account_credits_must_not_exceed_debits) != 0 &&
        credit->credits_posted + t->amount > credit->debits_posted) {
        return tw_create_transfer_exceeds_debits;
    }
    if (model->transfers_count == model->transfers_max) return tw_create_transfer_too_many_transfers;

    tw_transfer *created = &model->transfers[model->transfers_count++];
    *created = *t;
    created->timestamp = timestamp;
    debit->debits_posted += t->amount;
    credit->credits_posted += t->amount;
    model->timestamp_last = timestamp;
    return MODEL_RESULT_OK;
}

/* Whether event index of body has the linked flag. */
static bool event_linked(tw_operation operation, const uint8_t *body, uint32_t index) {
    TW_ASSERT(body != NULL);
    TW_ASSERT(operation == tw_operation_create_accounts || operation == tw_operation_create_transfers);
    if (operation == tw_operation_create_accounts) {
        tw_account a;
        memcpy(&a, body + (size_t)index * sizeof(a), sizeof(a));
        return (a.flags & tw_account_linked) != 0;
    }
    tw_transfer t;
    memcpy(&t, body + (size_t)index * sizeof(t), sizeof(t));
    return (t.flags & tw_transfer_linked) != 0;
}

/* Applies event index of body at timestamp; returns its result code. */
static uint32_t event_create(tw_model_ledger *model, tw_operation operation, const uint8_t *body,
                             uint32_t index, uint64_t timestamp) {
    TW_ASSERT(model != NULL && body != NULL);
    TW_ASSERT(operation == tw_operation_create_accounts || operation == tw_operation_create_transfers);
    if (operation == tw_operation_create_accounts) {
        tw_account a;
        memcpy(&a, body + (size_t)index * sizeof(a), sizeof(a));
        return account_create(model, &a, timestamp);
    }
    tw_transfer t;
    memcpy(&t, body + (size_t)index * sizeof(t), sizeof(t));
    return transfer_create(model, &t, timestamp);
}

static model_snapshot snapshot_take(const tw_model_ledger *model) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(model->accounts_count <= model->accounts_max);
    return (model_snapshot){.accounts_count = model->accounts_count,
                            .transfers_count = model->transfers_count,
                            .timestamp_last = model->timestamp_last};
}

/* Forgets what was created since the snapshot, giving back the balances its transfers moved. */
static void snapshot_restore(tw_model_ledger *model, model_snapshot snapshot) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(snapshot.accounts_count <= model->accounts_count &&
              snapshot.transfers_count <= model->transfers_count);
    while (model->transfers_count > snapshot.transfers_count) {
        const tw_transfer *t = &model->transfers[--model->transfers_count];
        tw_account *debit = account_find(model, t->debit_account_id);
        tw_account *credit = account_find(model, t->credit_account_id);
        TW_ASSERT(debit != NULL && credit != NULL);
        debit->debits_posted -= t->amount;
        credit->credits_posted -= t->amount;
    }
    model->accounts_count = snapshot.accounts_count;
    model->timestamp_last = snapshot.timestamp_last;
}

static void result_write(uint8_t *reply, uint32_t *results_count, uint32_t index, uint32_t result) {
    TW_ASSERT(reply != NULL && results_count != NULL);
    TW_ASSERT(result != MODEL_RESULT_OK);
    tw_create_result r = {.index = index, .result = result};
    memcpy(reply + (size_t)*results_count * sizeof(r), &r, sizeof(r));
    *results_count += 1;
}

/* A batch of creates, chain by chain. Returns how many results it wrote. */
static uint32_t create_batch(tw_model_ledger *model, tw_operation operation, uint64_t now_ns,
                             const uint8_t *body, uint32_t count, uint8_t *reply) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(count == 0 || (body != NULL && reply != NULL));
    if (count == 0) return 0;
    TW_ASSERT(model->timestamp_last < UINT64_MAX);
    uint64_t after_last = model->timestamp_last + 1;
    uint64_t base = now_ns > after_last ? now_ns : after_last; /* max(now_ns, last + 1) */
    TW_ASSERT(base <= UINT64_MAX - (count - 1));

    uint32_t results_count = 0;
    uint32_t first = 0;
    while (first < count) {
        /* The chain [first, last]: up to the first event without the linked flag. */
        uint32_t last = first;
        while (last < count - 1 && event_linked(operation, body, last)) last++;
        bool open = event_linked(operation, body, last); /* only at the batch's end */
        TW_ASSERT(!open || last == count - 1);

        model_snapshot before = snapshot_take(model);
        uint32_t cause = count; /* none */
        uint32_t cause_result = MODEL_RESULT_OK;
        uint32_t validated_end = open ? last : last + 1; /* an open chain's last is not validated */
        for (uint32_t i = first; i < validated_end; i++) {
            uint32_t result = event_create(model, operation, body, i, base + i);
            if (result != MODEL_RESULT_OK) {
                cause = i;
                cause_result = result;
                break;
            }
        }
        if (cause != count || open) {
            snapshot_restore(model, before);
            for (uint32_t i = first; i <= last; i++) {
                uint32_t result = MODEL_RESULT_LINKED_EVENT_FAILED;
                if (i == cause) result = cause_result;
                if (open && i == last) result = MODEL_RESULT_LINKED_EVENT_CHAIN_OPEN;
                result_write(reply, &results_count, i, result);
            }
        }
        first = last + 1;
    }
    return results_count;
}

/* The objects found, in the order of ids. Returns the reply's size in bytes. */
static uint32_t lookup_batch(tw_model_ledger *model, tw_operation operation, const uint8_t *body,
                             uint32_t count, uint8_t *reply) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(operation == tw_operation_lookup_accounts || operation == tw_operation_lookup_transfers);
    uint32_t size = 0;
    for (uint32_t i = 0; i < count; i++) {
        tw_u128 id;
        memcpy(&id, body + (size_t)i * sizeof(id), sizeof(id));
        const void *found = NULL;
        uint32_t found_size = 0;
        if (operation == tw_operation_lookup_accounts) {
            found = account_find(model, id);
            found_size = sizeof(tw_account);
        } else {
            found = transfer_find(model, id);
            found_size = sizeof(tw_transfer);
        }
        if (found == NULL) continue;
        memcpy(reply + size, found, found_size);
        size += found_size;
    }
    return size;
}

uint32_t tw_model_ledger_apply(tw_model_ledger *model, tw_operation operation, uint64_t timestamp,
                               const uint8_t *body, uint32_t body_size, uint8_t *reply,
                               uint32_t reply_size_max) {
    TW_ASSERT(model != NULL);
    TW_ASSERT(body_size == 0 || (body != NULL && reply != NULL));
    uint32_t event_size = 0;  /* bytes */
    uint32_t result_size = 0; /* bytes, the largest result one event can get */
    switch (operation) {
    case tw_operation_create_accounts:
        event_size = sizeof(tw_account);
        result_size = MODEL_CREATE_RESULT_SIZE;
        break;
    case tw_operation_create_transfers:
        event_size = sizeof(tw_transfer);
        result_size = MODEL_CREATE_RESULT_SIZE;
        break;
    case tw_operation_lookup_accounts:
        event_size = MODEL_ID_SIZE;
        result_size = sizeof(tw_account);
        break;
    case tw_operation_lookup_transfers:
        event_size = MODEL_ID_SIZE;
        result_size = sizeof(tw_transfer);
        break;
    case tw_operation_echo:
        TW_ASSERT_MSG(body_size <= reply_size_max, "model_ledger: no room for the echo");
        if (body_size > 0) memcpy(reply, body, body_size);
        return body_size;
    case tw_operation_none: break;
    }
    TW_ASSERT_MSG(event_size != 0, "model_ledger: a request without a known operation");
    TW_ASSERT_MSG(body_size % event_size == 0, "model_ledger: the body is not whole events");
    uint32_t count = body_size / event_size;
    TW_ASSERT_MSG((uint64_t)count * result_size <= reply_size_max, "model_ledger: no room for the reply");
    if (operation == tw_operation_create_accounts || operation == tw_operation_create_transfers) {
        return MODEL_CREATE_RESULT_SIZE * create_batch(model, operation, timestamp, body, count, reply);
    }
    return lookup_batch(model, operation, body, count, reply);
}
