#!/bin/sh
# Builds and runs every libFuzzer target in tests/fuzz/*.c for FUZZ_SECONDS each (default 30).
# Each target links the C core's sources directly (no Lua state needed for the primitives it fuzzes).
set -eu
secs=${FUZZ_SECONDS:-30}
mkdir -p build-fuzz
found=0
for t in tests/fuzz/*.c; do
  [ -f "$t" ] || continue
  found=1
  name=$(basename "$t" .c)
  # shellcheck disable=SC2046
  clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Icsrc -I/usr/include/lua5.4 \
    $(pkg-config --cflags libcurl openssl libmariadb expat libcares) \
    -DAWSNET_FUZZ "$t" $(sed -n 's/^\/\/ sources: //p' "$t") -o "build-fuzz/$name" \
    $(pkg-config --libs libcurl openssl libmariadb expat libcares) -llua5.4
  mkdir -p "build-fuzz/$name.corpus"
  "build-fuzz/$name" -max_total_time="$secs" "build-fuzz/$name.corpus" tests/fuzz/corpus/"$name" 2>&1 | tail -n 3
done
[ "$found" = 1 ] || echo "no fuzz targets yet"
