# Hostile peers (harness/twin_hostile.c: garbage, huge headers, slowloris, peers that never
# read, connection churn) against twin-server on loopback while twin-load --check model runs:
# every run exits 0, the server survives with its VmRSS under a limit derived from its flags.
add_test(NAME twin_server_hostile
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/hostile_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-hostile> $<TARGET_FILE:twin-load>)
twin_label(twin_server_hostile real robustness)
