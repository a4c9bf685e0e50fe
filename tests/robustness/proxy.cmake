# twin-load --check model through twin-proxy (harness/twin_proxy.c) to twin-server on
# loopback: delay, cut writes, resets, stalled readers, each alone and all together; the
# proxy's flag errors; the proxy's stats must show each fault happened.
add_test(NAME twin_proxy_faults
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/proxy_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-proxy> $<TARGET_FILE:twin-load>)
twin_label(twin_proxy_faults real robustness)
