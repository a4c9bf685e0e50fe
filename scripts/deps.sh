#!/usr/bin/env bash
# Installs the Debian packages twin needs, only those missing. Sourced by the other scripts.
# Packages: cmake ninja-build gcc clang libclang-rt-14-dev (clang's sanitizer runtimes),
# pkg-config, liburing-dev (the real loop), libuv1-dev (the ping-pong peer), libglib2.0-dev
# and libomp-14-dev (the thread-pool peers: GThreadPool, and OpenMP under clang), libxxhash-dev
# (the protocol's XXH3 checksums), python3 (the trace test reads twin-sim's JSON), iproute2
# and nftables (tests/robustness: network namespaces, veth, tc, packet drops).
twin_deps() {
  local packages=(cmake ninja-build gcc clang libclang-rt-14-dev libc6-dev pkg-config liburing-dev
                  libuv1-dev libglib2.0-dev libomp-14-dev libxxhash-dev python3
                  iproute2 nftables)
  twin_install_packages "${packages[@]}"
}

# Installs those of the named Debian packages that are missing (scripts/bench report adds
# gnuplot-nox for its plots this way).
twin_install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "twin: installing missing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "twin: not root: run 'sudo apt-get update && sudo apt-get install -y ${missing[*]}' and retry" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2
}
