#!/usr/bin/env bash
# Builds (once) the real llama.cpp client that the GGUF tests check ctrain's exports against, and
# prints the path of its program: tests/ref/llama_greedy.c linked against libllama, from the
# llama.cpp source vendored in the llama-cpp-python sdist on PyPI (CPU only: no GPU backends, no
# curl/OpenSSL, no llama.cpp tests, tools or examples). About 10 minutes on 2 cores, once; later
# calls reuse the cache and only relink when tests/ref/llama_greedy.c changed.
#
#   scripts/build_llama_cpp.sh          prints the path of llama_greedy (building it if needed)
#   scripts/build_llama_cpp.sh --bench  prints the path of build/llama_cpp_bench (bench/llama_cpp_bench.c,
#                                       linked against the cache's libllama; the library is built as above
#                                       only when the cache has none, so a cache shared by several checkouts
#                                       is read, not reconfigured)
#
# Needs cmake, a C/C++ compiler and, the first time, PyPI through pip (the sdist is kept in the cache).
# The cache is $CTRAIN_LLAMA_CPP_DIR (default build/llama.cpp); delete it to rebuild.
# Exit status: 0 built, 77 impossible here (no cmake, or no sdist and no way to fetch it), 1 a failed build.
set -euo pipefail
version=0.3.36   # the llama-cpp-python release whose vendor/llama.cpp the figures in docs/interop.md were measured with
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CTRAIN_LLAMA_CPP_DIR:-$root/build/llama.cpp}
sdist=$cache/llama_cpp_python-$version.tar.gz
src=$cache/src
bld=$cache/build
log=$cache/build.log
bin=$bld/llama_greedy

if [ "${1:-}" = --bench ]; then
    libs=("$bld/llama.cpp/src/libllama.a" "$bld/llama.cpp/ggml/src/libggml.a" "$bld/llama.cpp/ggml/src/libggml-cpu.a"
          "$bld/llama.cpp/ggml/src/libggml-base.a")
    for lib in "${libs[@]}"; do
        [ -f "$lib" ] || { "$0" >/dev/null || exit $?; break; }
    done
    out=$root/build/llama_cpp_bench
    main=$root/bench/llama_cpp_bench.c
    if [ ! -x "$out" ] || [ "$main" -nt "$out" ] || [ "$root/tests/ref/llama_client.h" -nt "$out" ] || [ "$root/bench/bench_clock.h" -nt "$out" ] \
       || [ "${libs[0]}" -nt "$out" ]; then
        mkdir -p "$root/build"
        command -v c++ >/dev/null 2>&1 || { echo "build_llama_cpp: no C++ compiler (apt-get install g++)" >&2; exit 77; }
        if ! cc -O2 -std=c11 -Wall -Werror -I"$root" -I"$src/include" -I"$src/ggml/include" -c "$main" -o "$out.o" \
             || ! c++ "$out.o" "${libs[@]}" -fopenmp -lpthread -ldl -lm -o "$out.tmp"; then
            rm -f "$out.o" "$out.tmp"
            echo "build_llama_cpp: building $out failed" >&2
            exit 1
        fi
        rm -f "$out.o"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
    exit 0
fi

command -v cmake >/dev/null 2>&1 || { echo "build_llama_cpp: cmake is not installed (apt-get install cmake)" >&2; exit 77; }
command -v c++ >/dev/null 2>&1 || { echo "build_llama_cpp: no C++ compiler (apt-get install g++)" >&2; exit 77; }
mkdir -p "$cache"

if [ ! -f "$src/CMakeLists.txt" ]; then
    if [ ! -f "$sdist" ]; then
        echo "build_llama_cpp: fetching llama-cpp-python==$version (sdist) from PyPI" >&2
        python=${PYTHON:-python3}
        tmp=$(mktemp -d "$cache/download.XXXXXX")
        if ! "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "llama-cpp-python==$version" >"$log" 2>&1 \
           || [ ! -f "$tmp/$(basename "$sdist")" ]; then
            rm -rf "$tmp"
            why=$(tail -n 1 "$log")
            echo "build_llama_cpp: cannot fetch llama-cpp-python==$version from PyPI (${why:-pip failed silently}) and no cached sdist at $sdist" >&2
            exit 77
        fi
        mv "$tmp/$(basename "$sdist")" "$sdist"
        rm -rf "$tmp"
    fi
    echo "build_llama_cpp: unpacking vendor/llama.cpp" >&2
    rm -rf "$src" "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xzf "$sdist" -C "$src.tmp" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp"
    mv "$src.tmp" "$src"
fi

# A two-line project around llama.cpp, so that cmake knows how to link libllama (static) and ggml.
wrap=$cache/wrap
mkdir -p "$wrap"
cat >"$wrap/CMakeLists.txt.new" <<EOF
cmake_minimum_required(VERSION 3.14)
project(ctrain_llama_greedy C CXX)
add_subdirectory("$src" llama.cpp)
add_executable(llama_greedy "$root/tests/ref/llama_greedy.c")
target_link_libraries(llama_greedy PRIVATE llama)
EOF
cmp -s "$wrap/CMakeLists.txt.new" "$wrap/CMakeLists.txt" || mv "$wrap/CMakeLists.txt.new" "$wrap/CMakeLists.txt"
rm -f "$wrap/CMakeLists.txt.new"

jobs=${CTRAIN_LLAMA_CPP_JOBS:-$(nproc 2>/dev/null || echo 2)}
# A cache configured in another folder (a copied or moved build/) names that folder everywhere:
# cmake refuses it, so it is configured and built again here.
if [ -f "$bld/CMakeCache.txt" ] && ! grep -qxF "CMAKE_CACHEFILE_DIR:INTERNAL=$bld" "$bld/CMakeCache.txt"; then
    echo "build_llama_cpp: $bld was configured in another folder; building it again here" >&2
    rm -rf "$bld"
fi
if [ ! -f "$bld/CMakeCache.txt" ]; then
    echo "build_llama_cpp: building llama.cpp (CPU, $jobs jobs; about 10 minutes on 2 cores, once; log: $log)" >&2
    if ! cmake -S "$wrap" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
         -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
         -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
         -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$bld/CMakeCache.txt"
        echo "build_llama_cpp: cmake could not configure llama.cpp (log: $log)" >&2
        exit 1
    fi
fi
if ! nice cmake --build "$bld" --target llama_greedy -j "$jobs" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "build_llama_cpp: building llama.cpp failed (log: $log)" >&2
    exit 1
fi
echo "$bin"
