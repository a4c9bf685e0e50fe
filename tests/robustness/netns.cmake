# twin-load (harness/twin_load.c) against twin-server: on loopback with the reference-model
# check and a planted mismatch; in network namespaces under nftables loss, a tbf limit, link
# flaps and netem where the kernel has it; and with the server killed and restarted under load.
add_test(NAME twin_load_loopback
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/load_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-load>)
twin_label(twin_load_loopback real robustness)
set_tests_properties(twin_load_loopback PROPERTIES TIMEOUT 240)

# Two network namespaces joined by veth: twin-load --check model under no faults, nftables
# loss (5%, 20%), a tbf limit, link flaps, and netem where the kernel has it. Needs root.
add_test(NAME twin_load_netns
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/netns_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-load>)
twin_label(twin_load_netns real robustness)
set_tests_properties(twin_load_netns PROPERTIES TIMEOUT 180)

# twin-server killed (-9) 3 times and restarted on the same loopback port under
# twin-load --check completions: every packet completes exactly once, none hangs.
add_test(NAME twin_load_restart
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/restart_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-load>)
twin_label(twin_load_restart real robustness)
set_tests_properties(twin_load_restart PROPERTIES TIMEOUT 180)
