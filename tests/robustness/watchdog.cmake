# The real runner's hang watchdog, shown on a test that hangs on purpose.
add_executable(hang_real hang_real_test.c ${TWIN_TEST_SUPPORT}/watchdog_real.c)
target_link_libraries(hang_real PRIVATE twin_real)
target_include_directories(hang_real PRIVATE ${TWIN_TEST_SUPPORT})
add_test(NAME hang_watchdog COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/hang_test.sh $<TARGET_FILE:hang_real>)
set_tests_properties(hang_watchdog PROPERTIES LABELS "real;robustness" TIMEOUT 120)

# Where io_uring is refused: real tests that need it skip with the reason; twin-server says
# what to do.
add_executable(no_io_uring no_io_uring.c ${TWIN_TEST_SUPPORT}/seccomp_refuse.c)
target_include_directories(no_io_uring PRIVATE ${TWIN_TEST_SUPPORT})
add_test(NAME io_uring_refused
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/io_uring_refused_test.sh $<TARGET_FILE:no_io_uring>
                 $<TARGET_FILE:loop_real> $<TARGET_FILE:locker_real> $<TARGET_FILE:twin-server>)
set_tests_properties(io_uring_refused PROPERTIES LABELS "real;robustness" TIMEOUT 120)
