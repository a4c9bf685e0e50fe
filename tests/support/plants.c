/* Linked only into test binaries built on twin_sim_planted. */
#include <string.h>

#include "../../src/lib/plant.h"
#include "twin_test.h"

static const struct {
    const char *name;
    tw_plant plant;
} plants[] = {
    {"none", tw_plant_none},
    {"locker_unlock_no_wake", tw_plant_locker_unlock_no_wake},
    {"locker_wake_takes_locked", tw_plant_locker_wake_takes_locked},
    {"locker_trylock_not_atomic", tw_plant_locker_trylock_not_atomic},
    {"pool_notify_skips_idle", tw_plant_pool_notify_skips_idle},
    {"pool_steal_commits_before_copy", tw_plant_pool_steal_commits_before_copy},
    {"pool_join_skips_wait", tw_plant_pool_join_skips_wait},
    {"server_retry_executes_again", tw_plant_server_retry_executes_again},
    {"client_demux_no_rebase", tw_plant_client_demux_no_rebase},
    {"client_eviction_forgets_pending", tw_plant_client_eviction_forgets_pending},
    {"client_retry_new_number", tw_plant_client_retry_new_number},
    {"client_eviction_drops_batched", tw_plant_client_eviction_drops_batched},
    {"client_batch_full_not_fits", tw_plant_client_batch_full_not_fits},
    {"server_register_again_new_session", tw_plant_server_register_again_new_session},
};

_Static_assert(sizeof(plants) / sizeof(plants[0]) == tw_plant_count, "name every planted bug");

bool tw_test_plant_select(const char *name) {
    for (size_t i = 0; i < sizeof(plants) / sizeof(plants[0]); i++) {
        if (strcmp(name, plants[i].name) == 0) {
            tw_plant_active = plants[i].plant;
            return true;
        }
    }
    return false;
}

const char *tw_test_plant_names(void) {
    return "none, locker_unlock_no_wake, locker_wake_takes_locked, locker_trylock_not_atomic, "
           "pool_notify_skips_idle, pool_steal_commits_before_copy, pool_join_skips_wait, "
           "server_retry_executes_again, client_demux_no_rebase, client_eviction_forgets_pending, "
           "client_retry_new_number, client_eviction_drops_batched, client_batch_full_not_fits, "
           "server_register_again_new_session";
}
