/* twin: the server's state machine, a small ledger in the spirit of TigerBeetle's.
 *
 * Accounts and transfers with 128-bit ids, fixed-size events, results that are sparse for
 * creates ({index, result} for failed events only, ascending index) and dense for lookups
 * (the objects found, in the order asked). A chain of events flagged "linked" (the chain
 * ends at the first event without the flag) is atomic: if one event fails, each event of
 * the chain fails (the cause with its own code, the others with linked_event_failed) and
 * nothing of it applies; a chain still open at the end of a batch fails as a whole, as in
 * TigerBeetle: its last event with linked_event_chain_open, the others with
 * linked_event_failed (or, for the first that broke a rule, its own code). Each created
 * object gets a timestamp; timestamps are strictly increasing across the ledger's life.
 * All memory is allocated at init from the limits given. Single-threaded: the server
 * calls it from its loop thread. Layouts are the wire format (little-endian, no padding). */
#ifndef TWIN_LEDGER_H
#define TWIN_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tw_u128 {
    uint64_t low;
    uint64_t high;
} tw_u128;

enum tw_account_flags {
    tw_account_linked = 1u << 0,
    tw_account_debits_must_not_exceed_credits = 1u << 1,
    tw_account_credits_must_not_exceed_debits = 1u << 2,
};

/* 64 bytes. */
typedef struct tw_account {
    tw_u128 id;
    uint64_t debits_posted;
    uint64_t credits_posted;
    uint32_t ledger;
    uint16_t code;
    uint16_t flags;
    uint64_t timestamp; /* 0 in a create event; set by the ledger */
    uint8_t reserved[16]; /* zero */
} tw_account;

enum tw_transfer_flags {
    tw_transfer_linked = 1u << 0,
};

/* 80 bytes. */
typedef struct tw_transfer {
    tw_u128 id;
    tw_u128 debit_account_id;
    tw_u128 credit_account_id;
    uint64_t amount;
    uint32_t ledger;
    uint16_t code;
    uint16_t flags;
    uint64_t timestamp; /* 0 in a create event; set by the ledger */
    uint64_t reserved; /* zero */
} tw_transfer;

_Static_assert(sizeof(tw_account) == 64, "tw_account is 64 bytes on the wire");
_Static_assert(sizeof(tw_transfer) == 80, "tw_transfer is 80 bytes on the wire");

/* Result codes: named after the rule they enforce. 0 is ok (never sent: results are
 * sparse). Checked in the order listed, so an event gets the first rule it breaks. */
typedef enum tw_create_account_result {
    tw_create_account_ok = 0,
    tw_create_account_linked_event_failed = 1,
    tw_create_account_linked_event_chain_open = 2,
    tw_create_account_timestamp_must_be_zero = 3,
    tw_create_account_reserved_field = 4,
    tw_create_account_reserved_flag = 5,
    tw_create_account_id_must_not_be_zero = 6,
    tw_create_account_id_must_not_be_int_max = 7,
    tw_create_account_flags_are_mutually_exclusive = 8,
    tw_create_account_debits_posted_must_be_zero = 9,
    tw_create_account_credits_posted_must_be_zero = 10,
    tw_create_account_ledger_must_not_be_zero = 11,
    tw_create_account_code_must_not_be_zero = 12,
    tw_create_account_exists_with_different_flags = 13,
    tw_create_account_exists_with_different_ledger = 14,
    tw_create_account_exists_with_different_code = 15,
    tw_create_account_exists = 16,
    tw_create_account_too_many_accounts = 17, /* the ledger's accounts_max is reached */
} tw_create_account_result;

typedef enum tw_create_transfer_result {
    tw_create_transfer_ok = 0,
    tw_create_transfer_linked_event_failed = 1,
    tw_create_transfer_linked_event_chain_open = 2,
    tw_create_transfer_timestamp_must_be_zero = 3,
    tw_create_transfer_reserved_field = 4,
    tw_create_transfer_reserved_flag = 5,
    tw_create_transfer_id_must_not_be_zero = 6,
    tw_create_transfer_id_must_not_be_int_max = 7,
    tw_create_transfer_debit_account_id_must_not_be_zero = 8,
    tw_create_transfer_debit_account_id_must_not_be_int_max = 9,
    tw_create_transfer_credit_account_id_must_not_be_zero = 10,
    tw_create_transfer_credit_account_id_must_not_be_int_max = 11,
    tw_create_transfer_accounts_must_be_different = 12,
    tw_create_transfer_ledger_must_not_be_zero = 13,
    tw_create_transfer_code_must_not_be_zero = 14,
    tw_create_transfer_amount_must_not_be_zero = 15,
    tw_create_transfer_debit_account_not_found = 16,
    tw_create_transfer_credit_account_not_found = 17,
    tw_create_transfer_accounts_must_have_the_same_ledger = 18,
    tw_create_transfer_transfer_must_have_the_same_ledger_as_accounts = 19,
    tw_create_transfer_exists_with_different_debit_account_id = 20,
    tw_create_transfer_exists_with_different_credit_account_id = 21,
    tw_create_transfer_exists_with_different_amount = 22,
    tw_create_transfer_exists_with_different_flags = 23,
    /* Never produced, kept for a stable numbering: an existing transfer with the same debit
     * account (else exists_with_different_debit_account_id) has that account's ledger, and
     * so does the event (else transfer_must_have_the_same_ledger_as_accounts). */
    tw_create_transfer_exists_with_different_ledger = 24,
    tw_create_transfer_exists_with_different_code = 25,
    tw_create_transfer_exists = 26,
    tw_create_transfer_overflows_debits_posted = 27,
    tw_create_transfer_overflows_credits_posted = 28,
    tw_create_transfer_exceeds_credits = 29, /* debit account has debits_must_not_exceed_credits */
    tw_create_transfer_exceeds_debits = 30,  /* credit account has credits_must_not_exceed_debits */
    tw_create_transfer_too_many_transfers = 31,
} tw_create_transfer_result;

/* A sparse create result: 8 bytes. */
typedef struct tw_create_result {
    uint32_t index;
    uint32_t result;
} tw_create_result;

const char *tw_create_account_result_name(tw_create_account_result result);
const char *tw_create_transfer_result_name(tw_create_transfer_result result);

typedef struct tw_ledger tw_ledger;

typedef enum tw_ledger_error {
    tw_ledger_ok = 0,
    tw_ledger_system_resources, /* the limits' memory could not be allocated */
    tw_ledger_invalid_limits,   /* a limit of 0 */
} tw_ledger_error;

tw_ledger_error tw_ledger_init(tw_ledger **ledger, uint32_t accounts_max, uint32_t transfers_max);
void tw_ledger_deinit(tw_ledger *ledger);

/* Applies a batch of create events at time now_ns (the events' timestamps are strictly
 * increasing from max(now_ns, last + 1)). Writes one result per failed event, ascending,
 * into results (room for count) and returns how many it wrote. */
uint32_t tw_ledger_create_accounts(tw_ledger *ledger, uint64_t now_ns, const tw_account *events,
                                   uint32_t count, tw_create_result *results);
uint32_t tw_ledger_create_transfers(tw_ledger *ledger, uint64_t now_ns, const tw_transfer *events,
                                    uint32_t count, tw_create_result *results);

/* Writes the objects found, in the order of ids (missing ids are skipped), and returns how
 * many. */
uint32_t tw_ledger_lookup_accounts(const tw_ledger *ledger, const tw_u128 *ids, uint32_t count,
                                   tw_account *results);
uint32_t tw_ledger_lookup_transfers(const tw_ledger *ledger, const tw_u128 *ids, uint32_t count,
                                    tw_transfer *results);

/* The timestamp of the last object created (0 before any). */
uint64_t tw_ledger_timestamp_last(const tw_ledger *ledger);

#endif
