#include <twin/os.h>

const char *tw_os_result_name(tw_os_result result) {
    switch (result) {
    case tw_os_ok: return "ok";
    case tw_os_value_changed: return "value_changed";
    case tw_os_timed_out: return "timed_out";
    case tw_os_system_resources: return "system_resources";
    case tw_os_invalid: return "invalid";
    }
    return "unknown";
}
