# Ping-pong peers: latency-bound TCP ping-pong over loopback (libxev's ping-pong parameters),
# once with blocking sockets + pthreads and once with libuv. Included from bench/CMakeLists.txt;
# expects find_package(Threads REQUIRED) to have been done by the including project.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)

add_executable(twin-pingpong-blocking ${CMAKE_CURRENT_SOURCE_DIR}/pingpong_blocking.c)
target_link_libraries(twin-pingpong-blocking PRIVATE Threads::Threads)
target_compile_definitions(twin-pingpong-blocking PRIVATE _GNU_SOURCE)

add_executable(twin-pingpong-libuv ${CMAKE_CURRENT_SOURCE_DIR}/pingpong_libuv.c)
target_link_libraries(twin-pingpong-libuv PRIVATE PkgConfig::LIBUV Threads::Threads)
target_compile_definitions(twin-pingpong-libuv PRIVATE _GNU_SOURCE)
