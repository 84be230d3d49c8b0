# ctrain — build, test and run.
#   make                 build ./ctrain (CUDA objects too when nvcc is on PATH; CUDA=0 forces CPU only)
#   make test            check the layout, build and run the test suite, TEST_JOBS tests at a time
#                        (ends with "N passed, N failed")
#   make test-long       the suite plus its heavy cases
#   make check-layout    the layer order of includes, no include cycles, no over-long function,
#                        every allocation through ct_alloc, ct_ only on public names
#                        (docs/architecture.md; part of make test)
#   make test-faults     the fault-injection suite: kill -9, disk full, damaged files, a dying MPI rank
#                        (docs/reliability.md)
#   make test-ref        the reference tests against the real clients (torch, transformers, peft, trl,
#                        tokenizers, tiktoken, gguf) in a cached virtual environment (scripts/ref_venv.sh)
#   make asan            the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-cuda       only the CUDA op tests (CUDA against CPU; they skip without a GPU)
#   make test-cuda-memcheck the same under compute-sanitizer's memcheck
#   make deps            install missing system packages (Debian/Ubuntu, apt-get)
#   make demo            the end-to-end demo (see README)
#   make bench           CPU training-step benchmarks (bench/train_cpu.sh)
#   make bench-compare   ctrain against PyTorch eager and torch.compile on the CPU, interleaved rounds,
#                        one table (bench/compare_cpu.py; BENCH_ARGS="--rounds 3 --steps 6 --threads N";
#                        skips without torch)
#   make bench-tokenizer tokenizer encode throughput (MB/s) on ../shared/data
#   make bench-cuda-attention CUDA attention forward+backward TFLOP/s (BENCH_ARGS="--T 2048")
#   make bench-gpu       GPT-2 124M, T=1024 on the GPU: ctrain vs PyTorch eager and torch.compile
#   make fuzz            libFuzzer targets (clang), each run for FUZZ_SECONDS

.DEFAULT_GOAL := all
SHELL := /bin/bash

# ---- dependencies: make sure they are installed before anything asks pkg-config ----
NO_DEPS_GOALS := deps clean help
ifeq ($(filter $(NO_DEPS_GOALS),$(MAKECMDGOALS)),)
  ifneq ($(shell scripts/deps.sh --check >/dev/null 2>&1 && echo ok),ok)
    $(info ctrain: some build dependencies are missing; running scripts/deps.sh --install)
    DEPS_STATUS := $(shell scripts/deps.sh --install 1>&2; echo $$?)
    ifneq ($(DEPS_STATUS),0)
      $(error dependency install failed (see above); fix it and run make again)
    endif
  endif
endif

# ---- configuration ----
BUILD ?= build
SAN ?= 0
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
ifeq ($(origin CUDA),undefined)
  CUDA := $(if $(NVCC),1,0)
endif
# NCCL (GPU collectives, train/dist/dist_nccl.c): with CUDA, when nccl.h is found in NCCL_HOME, the CUDA
# toolkit or /usr; NCCL=0 builds CUDA without it (multi-GPU runs then refuse to start).
NCCL_HOME ?=
NCCL_H := $(firstword $(wildcard $(if $(NCCL_HOME),$(NCCL_HOME)/include/nccl.h) $(CUDA_HOME)/include/nccl.h \
                                 /usr/include/nccl.h /usr/local/include/nccl.h))
MPICC := $(shell command -v mpicc 2>/dev/null)
ifeq ($(origin MPI),undefined)
  MPI := $(if $(MPICC),1,0)
endif

PKGS := libcjson libzstd hdf5 openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

CC := $(if $(filter 1,$(MPI)),$(MPICC),cc)
OPT ?= -O3 -march=native
ifeq ($(SAN),1)
  OPT := -O1 -march=native
endif
# -Wno-format-truncation: messages are cut to fixed buffers on purpose.
# -fno-math-errno: no code reads errno after a math call; without it sqrtf is a call with a branch
# (errno for a negative argument) and loops using it (AdamW) stay scalar. Values are unchanged.
CFLAGS := -std=c11 $(OPT) -g -fno-math-errno -fopenmp -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wno-unused-parameter -Wno-format-truncation \
          -D_GNU_SOURCE -I. $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lm -lpthread
LDFLAGS := -fopenmp

ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(MPI),1)
  CFLAGS += -DCTRAIN_MPI=1
endif

# CUDA: explicit architectures (A100 = sm_80, H100/H200 = sm_90); no auto-detection that could add none.
CUDA_ARCHS ?= 80 90
NVCCFLAGS := -O3 -std=c++17 -I. -DCTRAIN_CUDA=1 $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
             -Xcompiler -Wall,-Wextra,-Werror,-fPIC --Werror all-warnings -MMD -MP
ifeq ($(CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but nvcc was not found (PATH or CUDA_HOME=$(CUDA_HOME)))
  endif
  CFLAGS += -DCTRAIN_CUDA=1 -DCTRAIN_CUDA_ARCHS="\"$(foreach a,$(CUDA_ARCHS),sm_$(a))\"" -I$(CUDA_HOME)/include
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
  ifeq ($(origin NCCL),undefined)
    NCCL := $(if $(NCCL_H),1,0)
  endif
  ifeq ($(NCCL),1)
    ifeq ($(NCCL_H),)
      $(error NCCL=1 but nccl.h was not found (NCCL_HOME, $(CUDA_HOME)/include, /usr/include): install NCCL \
              (Debian/Ubuntu: libnccl-dev from NVIDIA's CUDA repository) or build with NCCL=0)
    endif
    CFLAGS += -DCTRAIN_NCCL=1
    ifneq ($(NCCL_HOME),)
      CFLAGS += -I$(NCCL_HOME)/include
      LDLIBS += -L$(NCCL_HOME)/lib -Wl,-rpath,$(NCCL_HOME)/lib
    endif
    LDLIBS += -lnccl
  endif
endif

# EMU_CUDA=1 (tests/test_cuda_emu/run.sh): the C sources see CTRAIN_CUDA and CTRAIN_NCCL as in
# a CUDA build with NCCL, without nvcc; the emulation supplies the kernels, the CUDA runtime and
# NCCL (over MPI) and links them.
ifeq ($(EMU_CUDA),1)
  CFLAGS += -DCTRAIN_CUDA=1 -DCTRAIN_CUDA_ARCHS="\"emulated\"" -DCTRAIN_NCCL=1 -Itests/test_cuda_emu
endif

# ---- sources: every .c in the library folders and their subfolders; new files need no Makefile edit ----
LIB_DIRS := core data kernels optim train checkpoints
LIB_SRCS := $(filter-out train/cli/main.c,$(shell find $(LIB_DIRS) -name '*.c' | sort))
CU_SRCS := $(if $(filter 1,$(CUDA)),$(wildcard kernels/cuda/*.cu))
TEST_SRCS := $(wildcard tests/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(CU_SRCS:%.cu=$(BUILD)/%.cu.o)
MAIN_OBJ := $(BUILD)/train/cli/main.o
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
BIN := $(BUILD)/ctrain
TEST_BIN := $(BUILD)/ctrain_tests
# The build flags are part of the build: a change of CUDA/MPI/SAN/OPT rebuilds everything.
FLAGS_STAMP := $(BUILD)/.flags-$(shell echo '$(CC) $(CFLAGS) $(CUDA) $(LDLIBS)' | cksum | cut -d' ' -f1)

.PHONY: all deps check-layout test-data test test-long test-faults test-ref test-cuda test-cuda-memcheck asan demo docs clean help bench-tokenizer bench-cuda-attention bench-gpu fuzz
all: $(BIN) $(if $(filter build,$(BUILD)),ctrain)

$(FLAGS_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.flags-* && touch $@

# Quiet rules ("CC core/alloc.c"); make V=1 shows the full commands.
Q := $(if $(filter 1,$(V)),,@)
$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libctrain.a: $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

ctrain: $(BIN)
	@ln -sf $(BIN) ctrain

$(TEST_BIN): $(TEST_OBJS) $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Test data (tests/data/, see its README): the reference tokenizers, tiktoken's vectors and a corpus,
# kept in the repository (zstd-compressed where it pays) so a fresh clone runs every test. The build
# unpacks it into $(BUILD)/test-data in ../shared/data's layout; tests always read that copy
# (CTRAIN_SHARED), so the suite is the same everywhere. Benchmarks still read ../shared/data.
TEST_DATA_SRCS := $(shell find tests/data -type f ! -name README.md 2>/dev/null)
TEST_DATA := $(patsubst tests/data/%,$(BUILD)/test-data/%,$(TEST_DATA_SRCS:.zst=))
TEST_SHARED := $(abspath $(BUILD)/test-data)
UNZST := $(BUILD)/unzst
$(UNZST): $(BUILD)/tests/tools/unzst.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/test-data/%: tests/data/%.zst | $(UNZST)
	@mkdir -p $(dir $@)
	$(Q)$(UNZST) $< $@
$(BUILD)/test-data/%: tests/data/%
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

# Tests find the binary and the test data through the environment. TEST_JOBS tests of 2 OpenMP
# threads each share the cores, so a thread waiting at a barrier sleeps (passive) rather than
# spins on a core another test needs: spinning, the gradient checks ran 25x slower at -j2 on 2 cores
# (165 s against 6 s).
TEST_ENV := CTRAIN_BIN=$(abspath $(BIN)) CTRAIN_SHARED=$(TEST_SHARED) CTRAIN_ROOT=$(CURDIR) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} \
            OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive}
ifeq ($(SAN),1)
  TEST_ENV += ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
              LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
endif

# The layout of the sources (tests/tools/check_layout.c, docs/architecture.md): includes follow the
# layer order, no include cycle, no function over 120 lines, the training loop within 80.
LAYOUT_FILES = $(shell find core data kernels optim checkpoints train \( -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name '*.inc' \) | sort)
$(BUILD)/check_layout: tests/tools/check_layout.c
	@mkdir -p $(BUILD)
	$(Q)cc -std=c11 -O1 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
check-layout: $(BUILD)/check_layout
	$(Q)$(BUILD)/check_layout $(LAYOUT_FILES)

# The test data (tests/data/, unpacked) alone, for scripts that run a test binary of their own.
test-data: $(TEST_DATA)

# make test runs TEST_JOBS tests at a time (default: this machine's cores; most tests spend their
# time starting processes and writing files, so two at a time nearly halve the suite on two cores).
# The heavy suites below run one at a time.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: check-layout $(BIN) $(TEST_BIN) $(TEST_DATA)
	$(TEST_ENV) $(TEST_BIN) -j$(TEST_JOBS) $(TESTS)

test-long: $(BIN) $(TEST_BIN) $(TEST_DATA)
	$(TEST_ENV) $(TEST_BIN) --long $(TESTS)

# The fault-injection suite (suite "faults", tests/test_faults_*.c; docs/reliability.md), its loops included.
test-faults: $(BIN) $(TEST_BIN) $(TEST_DATA)
	$(TEST_ENV) $(TEST_BIN) --long ^faults.

asan:
	$(MAKE) BUILD=build-asan SAN=1 CUDA=0 test

# The reference tests (the rule is in tests/test.h): every suite whose name ends in "ref" (filter
# "ref."), plus the tests below that check against a real client from another suite. They run,
# heavy cases included, with python3 from the virtual environment of scripts/ref_venv.sh (created
# on first use, cached in ~/.cache/ctrain/ref-venv), and CTRAIN_REQUIRE_REF=1 makes a skip a
# failure: there every client is installed, so a reference test that does not run is a bug.
# TESTS=... runs only those tests instead.
REF_TESTS := ref. ^gguf. hf_gguf.llama_cpp_reader_ hf_gguf.llama_cpp_greedy_ hf_gguf.llama_cpp_convert_ optim.adamw_expectations_agree_with_torch \
             tokenizer_files.reads_hf_written_gpt2 tokenizer_train.hf_tokenizers_agree \
             tokenizer_files.hf_tokenizers_reads_rank_files eval.matches_transformers generate.import_keeps_the_eos_ids
test-ref: $(BIN) $(TEST_BIN) $(TEST_DATA)
	@venv=$$(scripts/ref_venv.sh) && echo "test-ref: python3 from $$venv" && \
	  PATH="$$venv/bin:$$PATH" CTRAIN_REQUIRE_REF=1 $(TEST_ENV) $(TEST_BIN) --long $(or $(TESTS),$(REF_TESTS))

# The CUDA suites (tests/test_cuda_*.c, suite "cuda"): every op against the CPU backend.
# memcheck follows the forked test processes (--target-processes all).
COMPUTE_SANITIZER ?= $(firstword $(shell command -v compute-sanitizer 2>/dev/null) \
                       $(wildcard $(CUDA_HOME)/bin/compute-sanitizer $(CUDA_HOME)/compute-sanitizer/compute-sanitizer))
test-cuda: $(BIN) $(TEST_BIN) $(TEST_DATA)
	$(TEST_ENV) $(TEST_BIN) cuda.

test-cuda-memcheck: $(BIN) $(TEST_BIN) $(TEST_DATA)
	@test -n "$(COMPUTE_SANITIZER)" || { echo "compute-sanitizer not found: install the CUDA toolkit's sanitizer or set COMPUTE_SANITIZER=path"; exit 1; }
	$(TEST_ENV) $(COMPUTE_SANITIZER) --tool memcheck --target-processes all --error-exitcode 1 --report-api-errors no \
	  $(TEST_BIN) cuda.

deps:
	@scripts/deps.sh --install

# Documents generated from the code (a test checks they are current).
docs: $(BIN)
	@{ sed -n '1,/^<!-- generated/p' docs/config.md; $(BIN) config --keys --markdown; } > docs/config.md.new
	@mv docs/config.md.new docs/config.md && echo "docs/config.md regenerated"

demo: all
	@scripts/demo.sh

# Tokenizer benchmark (bench/bench_tokenizer.c), and tiktoken on the same input when installed.
$(BUILD)/bench_tokenizer: $(BUILD)/bench/bench_tokenizer.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# CUDA attention forward/backward timing and TFLOP/s (bench/bench_cuda_attention.c; needs a GPU).
$(BUILD)/bench_cuda_attention: $(BUILD)/bench/bench_cuda_attention.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The CPU attention op, forward + backward, per tile size of query rows (bench/bench_attention_cpu.c).
$(BUILD)/bench_attention_cpu: $(BUILD)/bench/bench_attention_cpu.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The cross-entropy over the vocabulary, forward, backward and fused (bench/bench_xent_cpu.c).
$(BUILD)/bench_xent_cpu: $(BUILD)/bench/bench_xent_cpu.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The matrix products of a decoding step over 1..8 rows (bench/bench_matmul_few.c).
$(BUILD)/bench_matmul_few: $(BUILD)/bench/bench_matmul_few.o $(BUILD)/libctrain.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

bench-cuda-attention: $(BUILD)/bench_cuda_attention
	$(BUILD)/bench_cuda_attention $(BENCH_ARGS)

bench-tokenizer: $(BUILD)/bench_tokenizer
	$(BUILD)/bench_tokenizer --shared ../shared/data

# GPT-2 124M at T=1024 on the GPU: ctrain (float32) for growing batches until memory runs out,
# then PyTorch eager and torch.compile on the same model and batch (bench/torch_gpt2.py).
GPU_BATCH ?= 8
bench-gpu: $(BIN)
	@for b in 4 8 16 32; do $(BIN) bench train --device cuda --model gpt2-124m --seq 1024 --batch $$b --steps 10 2>&1 | grep -E '^ms_per_step|out of GPU memory' || true; done
	python3 bench/torch_gpt2.py --batch $(GPU_BATCH) --seq 1024 --steps 10
	-@python3 bench/bench_tiktoken.py ../shared/data 2>/dev/null || true

# libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang, ASan and UBSan; each runs for
# FUZZ_SECONDS from the seeds in tests/fuzz/seeds plus its own corpus in build-fuzz/. Any crash is a bug.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_LIB_SRCS := $(shell find core data checkpoints -name '*.c' | sort)
FUZZ_CFLAGS := -std=c11 -g -O1 -fopenmp -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -D_GNU_SOURCE -I. $(PKG_CFLAGS)
fuzz: $(TEST_DATA)
	@mkdir -p build-fuzz
	@for t in $(FUZZ_TARGETS); do echo "  FUZZ-CC $$t"; \
	  $(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/$$t.c $(FUZZ_LIB_SRCS) -o build-fuzz/$$t $(PKG_LIBS) -lm || exit 1; done
	@set -o pipefail; for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus-$$t; echo "  FUZZ  $$t ($(FUZZ_SECONDS) s)"; \
	  CTRAIN_SHARED=$(TEST_SHARED) build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -dict=tests/fuzz/json.dict \
	    -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus-$$t tests/fuzz/seeds 2>&1 | tail -n 2 || exit 1; done

clean:
	rm -rf build build-asan build-fuzz ctrain

help:
	@sed -n '2,/^$$/s/^# //p' Makefile

# Benchmarks (numbers depend on the machine and its load; see docs/benchmarks.md).
.PHONY: bench bench-compare
bench: $(BIN)
	CTRAIN_BIN=$(abspath $(BIN)) bench/train_cpu.sh

# ctrain beside PyTorch (bench/compare_cpu.py, docs/benchmarks.md), with the python of the reference
# environment when it exists (scripts/ref_venv.sh; not created here), else python3; without torch it
# prints one line and succeeds.
REF_VENV ?= $(or $(CTRAIN_REF_VENV),$(HOME)/.cache/ctrain/ref-venv)
BENCH_PYTHON ?= $(if $(wildcard $(REF_VENV)/.ctrain-ref-ready),$(REF_VENV)/bin/python,python3)
bench-compare: $(BIN)
	@$(BENCH_PYTHON) bench/compare_cpu.py --ctrain $(abspath $(BIN)) $(BENCH_ARGS)

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/tests/tools/unzst.d
