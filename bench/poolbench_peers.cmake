# Pool-benchmark peers: the two tests of twin-poolbench (outside: N empty tasks scheduled one
# by one from the main thread; fanout: a binary tree of depth D scheduled from inside the
# pool) on GLib's GThreadPool, OpenMP tasks and a plain mutex+condvar pool. Included from
# bench/CMakeLists.txt; expects find_package(Threads REQUIRED) to have been done by the
# including project. Shared code: poolbench_common.h.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
find_package(OpenMP REQUIRED)

add_executable(twin-poolbench-glib ${CMAKE_CURRENT_SOURCE_DIR}/poolbench_glib.c)
target_link_libraries(twin-poolbench-glib PRIVATE PkgConfig::GLIB Threads::Threads)
target_compile_definitions(twin-poolbench-glib PRIVATE _GNU_SOURCE)

add_executable(twin-poolbench-openmp ${CMAKE_CURRENT_SOURCE_DIR}/poolbench_openmp.c)
target_link_libraries(twin-poolbench-openmp PRIVATE OpenMP::OpenMP_C Threads::Threads)
target_compile_definitions(twin-poolbench-openmp PRIVATE _GNU_SOURCE)

add_executable(twin-poolbench-mutex ${CMAKE_CURRENT_SOURCE_DIR}/poolbench_mutex.c)
target_link_libraries(twin-poolbench-mutex PRIVATE Threads::Threads)
target_compile_definitions(twin-poolbench-mutex PRIVATE _GNU_SOURCE)
