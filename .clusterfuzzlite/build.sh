#!/bin/bash -eu
# ClusterFuzzLite build for twin (docs/FUZZING.md, "Hosted CI"). ClusterFuzzLite runs this
# in the image of .clusterfuzzlite/Dockerfile, from $SRC/twin, with its compile environment:
#   CC, CXX            clang, clang++
#   CFLAGS             the sanitizer of this build (address, undefined or coverage) and
#                      -fsanitize=fuzzer-no-link (coverage for libFuzzer)
#   LIB_FUZZING_ENGINE the engine's link flags (-fsanitize=fuzzer)
#   OUT, WORK          where the fuzzers go, where the build may put what it likes
# It builds every fuzz target fuzz/fuzz_NAME.c (the sim build only; not the test-only
# *_planted targets) and puts in $OUT, for each:
#   fuzz_NAME                   the fuzzer
#   fuzz_NAME_seed_corpus.zip   corpus/NAME/ and corpus/regressions/NAME/ (the latter
#                               prefixed regression-)
#   fuzz_NAME.dict              fuzz/NAME.dict, where there is one
# TWIN_SOURCE: the checkout, when not $SRC/twin (checking this script outside the image).
cd "${TWIN_SOURCE:-$SRC/twin}"

build="$WORK/twin-build"
rm -rf "$build"

targets=()
for source in fuzz/fuzz_*.c; do
  targets+=("$(basename "$source" .c)")
done
[ ${#targets[@]} -gt 0 ] || { echo "build.sh: no fuzz/fuzz_*.c" >&2; exit 1; }

# TWIN_SANITIZE stays empty: the sanitizer comes in $CFLAGS. TWIN_WERROR=OFF: a newer clang's
# warnings must not stop the build. The fuzzers are linked by $CXX (ClusterFuzzLite's build
# integration asks for it even for C: the engine may need the C++ runtime).
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_C_FLAGS="$CFLAGS" \
  -DCMAKE_C_LINK_EXECUTABLE="$CXX <FLAGS> <CMAKE_C_LINK_FLAGS> <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>" \
  -DTWIN_FUZZ_ENGINE=external \
  -DTWIN_FUZZ_LINK="$LIB_FUZZING_ENGINE" \
  -DTWIN_SANITIZE= \
  -DTWIN_XXHASH_STATIC=ON \
  -DTWIN_WERROR=OFF \
  -DTWIN_BUILD_REAL=OFF \
  -DTWIN_BUILD_BENCH=OFF \
  -DBUILD_TESTING=OFF
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)"

for target in "${targets[@]}"; do
  name=${target#fuzz_}
  cp "$build/fuzz/$target" "$OUT/$target"
  # The runner image has only what the fuzzer links statically (TWIN_XXHASH_STATIC).
  if ldd "$OUT/$target" | grep -q xxhash; then
    echo "build.sh: $target links libxxhash dynamically; install only the static library" >&2
    exit 1
  fi

  seeds="$WORK/seeds/$name"
  rm -rf "$seeds"
  mkdir -p "$seeds"
  cp corpus/"$name"/* "$seeds/"
  if [ -d "corpus/regressions/$name" ]; then
    for input in corpus/regressions/"$name"/*; do
      cp "$input" "$seeds/regression-$(basename "$input")"
    done
  fi
  rm -f "$OUT/${target}_seed_corpus.zip"
  python3 -m zipfile -c "$OUT/${target}_seed_corpus.zip" "$seeds"/* # flat, as zip -j; no zip needed

  if [ -f "fuzz/$name.dict" ]; then
    cp "fuzz/$name.dict" "$OUT/$target.dict"
  fi
  echo "build.sh: $OUT/$target ($(ls "$seeds" | wc -l) seed inputs)"
done
