/* twin: the names of the reachability markers (see include/twin/reach.h). */
#include <twin/assert.h>
#include <twin/reach.h>

static const char *const names[tw_reach_count] = {
#define TW_REACH_NAME(name, description) #name,
    TW_REACH_LIST(TW_REACH_NAME)
#undef TW_REACH_NAME
};

static const char *const descriptions[tw_reach_count] = {
#define TW_REACH_DESCRIPTION(name, description) description,
    TW_REACH_LIST(TW_REACH_DESCRIPTION)
#undef TW_REACH_DESCRIPTION
};

const char *tw_reach_name(tw_reach reach) {
    TW_ASSERT((uint32_t)reach < tw_reach_count);
    return names[reach];
}

const char *tw_reach_description(tw_reach reach) {
    TW_ASSERT((uint32_t)reach < tw_reach_count);
    return descriptions[reach];
}
