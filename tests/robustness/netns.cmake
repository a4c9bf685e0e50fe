# twin-load (harness/twin_load.c) against twin-server: on loopback with the reference-model
# check and a planted mismatch; in network namespaces under nftables loss, a tbf limit, link
# flaps and netem where the kernel has it; and with the server killed and restarted under load.
add_test(NAME twin_load_loopback
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/load_test.sh
                 $<TARGET_FILE:twin-server> $<TARGET_FILE:twin-load>)
twin_label(twin_load_loopback real robustness)
set_tests_properties(twin_load_loopback PROPERTIES TIMEOUT 240)
