#!/usr/bin/env bash
# Runs the CUDA test suite ("cuda.": tests/test_cuda_ops.c, tests/test_cuda_train.c) against
# kernels/cuda/*.cu compiled for the CPU emulation of tests/test_cuda_emu/emu.h (no GPU, no nvcc
# needed). The whole library is built as in a CUDA build (make EMU_CUDA=1: CTRAIN_CUDA defined,
# no nvcc), so the model, the training loop and the ctrain binary (build/emu/ctrain, used by the
# tests that run it) take their GPU paths on the emulated device. See emu.h for what this can and
# cannot show. Usage: tests/test_cuda_emu/run.sh [test filters, default "cuda."]
# EMU_SAN=1 builds the kernels and tests with AddressSanitizer + UBSan: an out-of-bounds read or
# write by a kernel (device memory is host memory here) is then reported with its line.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/emu
SAN_FLAGS=""
if [ "${EMU_SAN:-0}" = 1 ]; then
  OUT=build/emu-san
  SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  export ASAN_OPTIONS=detect_leaks=0
fi
mkdir -p "$OUT"
LIB=build/emu-lib
SAN_MAKE=()
# (the library at -O3 as in the plain build; SAN=1 alone would build it at -O1, far slower here)
if [ "${EMU_SAN:-0}" = 1 ]; then LIB=build/emu-lib-san; SAN_MAKE=(SAN=1 "OPT=-O3 -march=native"); fi
tests=$(for t in tests/*.c; do echo "$LIB/${t%.c}.o"; done)
# With MPI (mpicc) the emulated NCCL runs over it and the multi-rank GPU tests run on 2 emulated GPUs.
MPI=0
if command -v mpicc >/dev/null && command -v mpicxx >/dev/null; then MPI=1; fi
make -s -j"${JOBS:-2}" CUDA=0 MPI=$MPI EMU_CUDA=1 "${SAN_MAKE[@]}" BUILD="$LIB" "$LIB/libctrain.a" "$LIB/train/cli/main.o" $tests
PKG="libcjson libzstd hdf5 openblas"
CXXFLAGS="-std=c++17 -O1 -g -pthread -ffp-contract=off -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unused-function -Wno-unknown-pragmas $SAN_FLAGS"
# kernel<<<cfg>>>(args) -> ct_emu_launch(EmuLaunch{cfg}, kernel, args); dynamic shared memory
emulate() {
  { echo "#line 1 \"$1\""; sed -E -e 's/([A-Za-z_][A-Za-z_0-9]*(<[A-Za-z_0-9]+>)?)<<<([^>]*)>>>\(/ct_emu_launch(EmuLaunch{\3}, [](auto... a_) { \1(a_...); }, /' \
         -e 's/extern __shared__ float smem\[\];/float *smem = ct_emu_dynamic_smem;/' "$1"; } > "$2"
}
mkdir -p "$OUT/kernels/cuda"
for h in kernels/cuda/*.cuh; do emulate "$h" "$OUT/$h"; done
objs=()
for cu in kernels/cuda/*.cu; do
  name=$(basename "$cu" .cu)
  [ "$name" = device_info ] && continue  # the emulation provides kernels/device.h's functions
  emulate "$cu" "$OUT/$name.cpp"
  g++ $CXXFLAGS -Itests/test_cuda_emu -I"$OUT" -I. -DCTRAIN_CUDA=1 -include tests/test_cuda_emu/emu.h \
      -c "$OUT/$name.cpp" -o "$OUT/$name.o"
  objs+=("$OUT/$name.o")
done
g++ $CXXFLAGS -Itests/test_cuda_emu -I. -c tests/test_cuda_emu/emu.cpp -o "$OUT/emu.o"
CXX=g++
MPI_FLAGS=""
# (MPI's C API only: the C++ bindings' header does not build with -Werror)
if [ $MPI = 1 ]; then CXX=mpicxx; MPI_FLAGS="-DCTRAIN_MPI=1 -DOMPI_SKIP_MPICXX=1 -DMPICH_SKIP_MPICXX=1"; fi
$CXX $CXXFLAGS $MPI_FLAGS -Itests/test_cuda_emu -c tests/test_cuda_emu/emu_nccl.cpp -o "$OUT/emu_nccl.o"
$CXX -fopenmp -pthread $SAN_FLAGS "$OUT"/emu.o "$OUT"/emu_nccl.o "${objs[@]}" $tests "$LIB/libctrain.a" \
    $(pkg-config --libs $PKG) -lm -o "$OUT/emu_tests"
$CXX -fopenmp -pthread $SAN_FLAGS "$OUT"/emu.o "$OUT"/emu_nccl.o "${objs[@]}" "$LIB/train/cli/main.o" "$LIB/libctrain.a" \
    $(pkg-config --libs $PKG) -lm -o "$OUT/ctrain"
make -s test-data  # tests/data unpacked into build/test-data, as make test uses it
CTRAIN_BIN="$PWD/$OUT/ctrain" CTRAIN_SHARED="$PWD/build/test-data" CTRAIN_ROOT="$PWD" \
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$OUT/emu_tests" "${@:-cuda.}"
