# duo.cu — one entry point.
#   make            all executables and tools into build/
#   make test       build and run the test suite (ends with "N passed, N failed")
#   make run        the main job on the built-in default (tinyshakespeare, char-level DUO)
#   make bench      CPU benchmarks side by side with the PyTorch reference (bench/README.md)
#   make deps       install the Debian packages the build needs (or print the apt-get line)
#   make cuda       the kernels compiled for real by nvcc (GPU_ARCH, default "sm_80 sm_90a"; no GPU needed)
#   make test-cuda  the CUDA backend's tests (tests/test_cuda_*.cpp) built by nvcc and run on the GPU
#   make test-asan  the test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (build/asan)
#   make fuzz       each libFuzzer target (tests/fuzz/) for FUZZ_SECONDS (default 60), built by clang (build/fuzz)
#   make clean
#
# Sources are found by wildcard, so adding a file needs no Makefile edit:
#   src/<module>/*.cpp          -> build/libduo.a (the engine)
#   src/app/duo-*.cpp, tools/duo-*.cpp -> build/duo-*  (one executable each)
#   cuda/**/*.cpp|*.cu          -> build/libduo_emu.a (CUDA kernels compiled by the host compiler against the
#                                  SIMT emulator, cuda/emu/; nvcc builds them for real with `make cuda`;
#                                  cuda/sm90/ and cuda/nccl/ are nvcc-only)
#   tests/*.cpp                 -> build/duo-tests (one Boost.Test binary)

# One job per core unless -j was given.
ifeq (,$(filter -j%,$(MAKEFLAGS)))
ifeq (0,$(MAKELEVEL))  # a sub-make (make test -> make all) shares its parent's job server
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
endif

CXX      ?= g++
OPT      ?= -O3
# -fno-trapping-math: no code here relies on floating-point traps, and it lets loops with float selects
# vectorise (fast_math.h); results are unchanged. -ffp-contract=off: a*b + c stays two roundings even when a
# user adds -march=native (FMA), so the results the tests compare bit for bit (CPU op vs emulated kernel, the
# reference's float32 relaxation) hold by construction on every x86-64 CPU.
CXXFLAGS ?= $(OPT) -g -std=c++20 -fopenmp -fno-trapping-math -ffp-contract=off -Wall -Wextra -MMD -MP
# Sanitizer flags for a whole build (`make test-asan` sets them, with BUILD=build/asan); empty by default.
SANITIZE ?=
CXXFLAGS += $(SANITIZE)
CPPFLAGS += -Isrc -Icuda -DBOOST_TEST_DYN_LINK
# OpenBLAS built for OpenMP (Debian's libopenblas0-openmp): its GEMMs share our OpenMP thread pool instead of a
# second pthreads pool fighting it for the cores (measured 1.4x faster DiT steps on 2 cores).
OPENBLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
LDLIBS   += -fopenmp -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -l:libopenblas.so.0 -ldnnl -lz -lpcre2-8 -lutf8proc -lboost_program_options -lpthread
TEST_LDLIBS = -lboost_unit_test_framework -lboost_context
# Open MPI (Debian's libopenmpi-dev): the communicator of multi-process runs (src/backend/comm_mpi.cpp, the one
# file that includes mpi.h); its flags come from the wrapper compiler, the C library only (no MPI C++ bindings).
# Without the wrapper (a machine that has only the libraries, bench/gpu_deps.sh) Debian's layout is assumed, and
# CPATH / LIBRARY_PATH may point elsewhere.
MPI_HOME     ?= /usr/lib/x86_64-linux-gnu/openmpi
MPI_CPPFLAGS := $(or $(shell mpicxx --showme:compile 2>/dev/null),-I$(MPI_HOME)/include) -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX
MPI_LDLIBS   := $(or $(filter-out -lmpi_cxx,$(shell mpicxx --showme:link 2>/dev/null)),-L$(MPI_HOME)/lib -lmpi)
LDLIBS   += $(MPI_LDLIBS)
BUILD    := build

# Debian packages the build needs (checked by `make deps`); clang, its runtime libraries (libFuzzer) and its
# OpenMP runtime are for `make fuzz` only (gcc's sanitizer runtimes for `make test-asan` come with g++). Open MPI
# is the multi-process launch and CPU communicator; iproute2's `ip` lets the tests give mpirun a private loopback
# where CI has no network (tests/test_distributed.cpp).
DEB_PKGS := g++ make libboost-program-options-dev libboost-test-dev libboost-context-dev libopenblas-dev libopenblas0-openmp libdnnl-dev \
            nlohmann-json3-dev libpcre2-dev libutf8proc-dev zlib1g-dev \
            libopenmpi-dev openmpi-bin iproute2 \
            clang libclang-rt-dev libomp-dev

LIB_SRCS  := $(shell find src -name '*.cpp' -not -path 'src/app/*' | sort)
EMU_SRCS  := $(shell find cuda -name '*.cpp' -o -name '*.cu' 2>/dev/null | grep -v '^cuda/sm90/' | grep -v '^cuda/nccl/' | sort)
APP_SRCS  := $(sort $(wildcard src/app/duo-*.cpp tools/duo-*.cpp))
TEST_SRCS := $(sort $(wildcard tests/*.cpp tests/ops/*.cpp))
BENCH_SRCS := $(sort $(wildcard bench/*.cpp))

LIB_OBJS  := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)
EMU_OBJS  := $(patsubst %,$(BUILD)/obj/%.o,$(EMU_SRCS))
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
APPS      := $(foreach s,$(APP_SRCS),$(BUILD)/$(basename $(notdir $(s))))
BENCHES   := $(foreach s,$(BENCH_SRCS),$(BUILD)/bench-$(basename $(notdir $(s))))

.PHONY: all test test-long test-asan fuzz fuzz-build run deps clean bench cuda test-cuda
all: $(APPS) $(BUILD)/duo-tests $(BENCHES)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# Kernels under the emulator: .cu files are plain C++ there.
$(BUILD)/obj/cuda/%.cu.o: cuda/%.cu
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -DDUO_CUDA_EMU $(CXXFLAGS) -x c++ -c $< -o $@
$(BUILD)/obj/cuda/%.cpp.o: cuda/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -DDUO_CUDA_EMU $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/src/backend/comm_mpi.o: CPPFLAGS += $(MPI_CPPFLAGS)

$(BUILD)/libduo.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libduo_emu.a: $(EMU_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^ $(if $(EMU_OBJS),,/dev/null 2>/dev/null || true)

define APP_RULE
$(BUILD)/$(basename $(notdir $(1))): $(BUILD)/obj/$(basename $(1)).o $(BUILD)/libduo.a
	$$(CXX) $$(CXXFLAGS) $$^ -o $$@ $$(LDLIBS)
endef
$(foreach s,$(APP_SRCS),$(eval $(call APP_RULE,$(s))))

# bench/<name>.cpp -> build/bench-<name> (step-time benchmarks; results in bench/README.md)
$(BUILD)/bench-%: $(BUILD)/obj/bench/%.o $(BUILD)/libduo.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# The ops benchmark runs the op-test harness's cases (tests/ops/): it links their runner too, on the CPU here and
# with the CUDA backend in `make cuda`.
OPS_HARNESS_OBJS := $(BUILD)/obj/tests/ops/cases.o $(BUILD)/obj/tests/ops/op_runner.o
$(BUILD)/bench-ops: $(BUILD)/obj/bench/ops.o $(OPS_HARNESS_OBJS) $(BUILD)/libduo.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

bench: all
	@scripts/run_benchmarks.sh

$(BUILD)/duo-tests: $(TEST_OBJS) $(EMU_OBJS) $(BUILD)/libduo.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(TEST_LDLIBS) $(LDLIBS)

# The test command of the README. Fast (tiny shapes); long checks live in `make test-long`.
test: deps
	@$(MAKE) --no-print-directory all
	@scripts/run_tests.sh $(BUILD)/duo-tests

# The suite under every OpenBLAS kernel family the CPU runs, and the CUDA kernels under other emulator schedules.
test-long: deps
	@$(MAKE) --no-print-directory all
	@scripts/run_long_tests.sh $(BUILD)/duo-tests

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc's libasan/libubsan), built apart in
# build/asan at -O1; any report fails the run. scripts/run_asan_tests.sh runs every suite but cuda_emu and says why.
# -Wno-maybe-uninitialized: gcc 12 with -fsanitize=address warns falsely inside libstdc++ (<regex>, std::function).
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -Wno-maybe-uninitialized
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT=-O1 SANITIZE="$(ASAN_FLAGS)" $(BUILD)/asan/duo-tests
	@scripts/run_asan_tests.sh $(BUILD)/asan/duo-tests

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run_default.sh

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# ---- Fuzzing (README "Fuzzing"): one libFuzzer target per parser of a file a user hands us, tests/fuzz/NAME.cpp
# -> build/fuzz/NAME, seeds in tests/fuzz/corpus/NAME/. Built by clang (libFuzzer is clang's) with ASan + UBSan,
# against its own copy of the engine in build/fuzz/. `make fuzz` runs each target FUZZ_SECONDS (default 60).
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS   := -O1 -g -std=c++20 -fopenmp -fno-trapping-math -ffp-contract=off -Wall -Wextra -MMD -MP $(FUZZ_SAN)
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/*.cpp))
FUZZ_TARGETS := $(foreach s,$(FUZZ_SRCS),$(BUILD)/fuzz/$(basename $(notdir $(s))))
# The floors the parsers live on (core, data, io, model) and the option tables of train/; not the backends, which
# clang 14 cannot compile (lambdas capturing structured bindings, C++20, arrive in clang 16).
FUZZ_LIB_SRCS := $(filter src/core/% src/data/% src/io/% src/model/% src/train/train_config.cpp src/train/optimizer.cpp,$(LIB_SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(BUILD)/fuzz/obj/%.o)

$(BUILD)/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/libduo.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(BUILD)/fuzz/libduo.a
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS)

fuzz: fuzz-build
	@scripts/run_fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- CUDA side: needs nvcc, not a GPU. Every cuda/**/*.cu (cuda/sm90/ included) becomes device code in
# build/libduo_cuda.a; tests/nvcc/*.cu are compile checks of the kernel-facing headers, built both by nvcc
# and, for the emulator path, by the host compiler (-fsyntax-only).
NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
GPU_ARCH  ?= sm_80 sm_90a
NVCCFLAGS ?= -O3 -std=c++20 -Xcompiler -Wall,-Wextra \
             $(foreach a,$(GPU_ARCH),-gencode arch=$(subst sm_,compute_,$(a)),code=$(a))
CUDA_SRCS := $(shell find cuda -name '*.cu' 2>/dev/null | sort)
CUDA_CHECK_SRCS := $(sort $(wildcard tests/nvcc/*.cu))
CUDA_OBJS := $(CUDA_SRCS:%=$(BUILD)/nvcc/%.o)

$(BUILD)/nvcc/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libduo_cuda.a: $(CUDA_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The GPU executables: the same mains, linked with the CUDA backend (select.cpp rebuilt with DUO_WITH_CUDA).
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# NCCL (cuda/nccl/, the GPUs' communicator): the CUDA toolkit's copy in $(CUDA_HOME)/lib unless NCCL_HOME says otherwise.
NCCL_HOME ?= $(CUDA_HOME)
CUDA_LDLIBS = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -L$(NCCL_HOME)/lib -Wl,-rpath,$(NCCL_HOME)/lib \
              -lnccl -lcublasLt -lcudart
CUDA_APP_SRCS := $(sort $(wildcard src/app/duo-*.cpp))
CUDA_APPS := $(foreach s,$(CUDA_APP_SRCS),$(BUILD)/cuda/$(basename $(notdir $(s))))
$(BUILD)/nvcc/select_cuda.o: src/backend/select.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -DDUO_WITH_CUDA $(CXXFLAGS) -c $< -o $@
define CUDA_APP_RULE
$(BUILD)/cuda/$(basename $(notdir $(1))): $(BUILD)/obj/$(basename $(1)).o $(BUILD)/nvcc/select_cuda.o $(BUILD)/libduo_cuda.a $(BUILD)/libduo.a
	@mkdir -p $$(dir $$@)
	$$(CXX) $$(CXXFLAGS) $$^ -o $$@ $$(CUDA_LDLIBS) $$(LDLIBS)
endef
$(foreach s,$(CUDA_APP_SRCS),$(eval $(call CUDA_APP_RULE,$(s))))

# The GPU benchmark of the backend's row-wise heads (bench/gpu_check.sh runs it; built here so it never rots).
$(BUILD)/cuda/gpu-ops-bench: $(BUILD)/nvcc/bench/gpu_ops_bench.cu.o $(BUILD)/libduo_cuda.a $(BUILD)/libduo.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(CUDA_LDLIBS) $(LDLIBS)

$(BUILD)/cuda/bench-ops: $(BUILD)/obj/bench/ops.o $(OPS_HARNESS_OBJS) $(BUILD)/nvcc/select_cuda.o $(BUILD)/libduo_cuda.a \
                         $(BUILD)/libduo.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(CUDA_LDLIBS) $(LDLIBS)

# The sampling benchmark on the GPU backend (--device cuda): one denoising step with the update on the device.
$(BUILD)/cuda/bench-sample_throughput: $(BUILD)/obj/bench/sample_throughput.o $(BUILD)/nvcc/select_cuda.o \
                                       $(BUILD)/libduo_cuda.a $(BUILD)/libduo.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(CUDA_LDLIBS) $(LDLIBS)

cuda: $(BUILD)/libduo_cuda.a $(CUDA_CHECK_SRCS:%=$(BUILD)/nvcc/%.o) $(CUDA_APPS) $(BUILD)/cuda/duo-cuda-tests \
      $(BUILD)/cuda/gpu-ops-bench $(BUILD)/cuda/bench-ops $(BUILD)/cuda/bench-sample_throughput
	@for f in $(CUDA_CHECK_SRCS); do $(CXX) $(CPPFLAGS) -std=c++20 -Wall -Wextra -x c++ -fsyntax-only $$f || exit 1; done
	@echo "cuda: device code for $(GPU_ARCH) built into build/cuda/ (duo-train, duo-eval, ... with --device cuda, and duo-cuda-tests for make test-cuda); emulator path of $(CUDA_CHECK_SRCS) checked"

# The CUDA backend's tests on a real GPU: the same tests/test_cuda_*.cpp that `make test` runs under the
# emulator (suite cuda_emu), compiled by nvcc against the runtime and cuBLASLt (suite cuda_gpu).
CUDA_TEST_SRCS := $(sort $(wildcard tests/test_cuda_*.cpp))
$(BUILD)/nvcc/tests/%.cpp.o: tests/%.cpp
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -Xcompiler -fopenmp -MMD -MP -x cu -c $< -o $@
$(BUILD)/cuda/duo-cuda-tests: $(CUDA_TEST_SRCS:%=$(BUILD)/nvcc/%.o) $(BUILD)/obj/tests/test_main.o $(BUILD)/libduo_cuda.a $(BUILD)/libduo.a
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(CUDA_LDLIBS) $(TEST_LDLIBS) $(LDLIBS)

test-cuda: deps
	@$(MAKE) --no-print-directory $(BUILD)/cuda/duo-cuda-tests
	@scripts/run_tests.sh $(BUILD)/cuda/duo-cuda-tests --run_test=cuda_gpu

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/nvcc $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
