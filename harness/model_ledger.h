/* twin harness: an independent reference model of the ledger, for oracles.
 *
 * A test or a simulation applies each committed request to the model as well as to the
 * server, and the server's reply body must equal the model's byte for byte. The model is
 * written from include/twin/ledger.h, not from src/ledger.c, and kept as plain as it gets,
 * so that a bug there is not copied here:
 *   - objects live in two arrays in creation order and are found by linear search (no
 *     hash table): O(objects) per event, meant for tests' small ledgers;
 *   - a batch is taken chain by chain (a lone event is a chain of one): the chain's events
 *     apply one by one until one fails; if one failed, or the chain is left open at the end
 *     of the batch, a snapshot taken before the chain is restored (the arrays are cut back
 *     to their old counts and the balances the chain's transfers moved are given back),
 *     rather than undone event by event, last first, as src/ledger.c does.
 *
 * Where ledger.h is silent, the model takes these readings (src/ledger.c agrees):
 *   - a created object keeps the event's flags, the linked bit included, so
 *     exists_with_different_flags compares every bit;
 *   - event i of a batch has timestamp base + i, base = max(timestamp, last + 1), whether it
 *     succeeds or fails; "last" is the timestamp of the last object created.
 *
 * Not modelled: the server around the ledger (sessions, retries, op numbers, how the commit
 * timestamp is chosen): the caller passes the commit timestamp, as the server's execute()
 * passes it to the ledger. Every reply body is modelled, balances and timestamps included;
 * only tw_ledger_timestamp_last() has no counterpart, and limits of 0 are a failed assertion
 * here rather than tw_ledger_invalid_limits. */
#ifndef TWIN_HARNESS_MODEL_LEDGER_H
#define TWIN_HARNESS_MODEL_LEDGER_H

#include <stdint.h>

#include <twin/ledger.h>
#include <twin/proto.h>

typedef struct tw_model_ledger tw_model_ledger;

/* Limits as tw_ledger_init's (both above 0). NULL when out of memory. */
tw_model_ledger *tw_model_ledger_new(uint32_t accounts_max, uint32_t transfers_max);
void tw_model_ledger_free(tw_model_ledger *model);

/* Applies one committed request (body: body_size bytes of operation's events, unaligned is
 * fine) at the commit timestamp, and writes the server's reply body into reply: creates, the
 * sparse tw_create_result array; lookups, the objects found in the order of ids; echo, the
 * body. reply_size_max must hold the largest reply the body could get. Returns the reply
 * body's size in bytes. */
uint32_t tw_model_ledger_apply(tw_model_ledger *model, tw_operation operation, uint64_t timestamp,
                               const uint8_t *body, uint32_t body_size, uint8_t *reply,
                               uint32_t reply_size_max);

#endif
