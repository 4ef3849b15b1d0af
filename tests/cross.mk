# cross.mk - included by the Makefile: the firmware cross build and its size report, a
# 32-bit host build, and the examples test.
#   make cross          rsq.h for a Cortex-M4 (RSQ_NO_SOCKETS, newlib), warnings as
#                       errors; a minimal firmware image linked from tests/cross_fw.c;
#                       then gcc -m32 (the host build with sockets, and the offline
#                       test suites run as 32-bit; gcc-multilib, installed by
#                       tools/deps.sh on x86-64)
#   make size           the footprint per switch set (.text/.rodata/.data/.bss of the
#                       object and of the core in an image), stack frames and depths
#   make test-examples  tests/examples_test.sh: every example built as its first comment
#                       says and run against a private redis-server

.PHONY: cross size test-examples
TEST_EXTRA += cross size test-examples

ARM_CC    ?= arm-none-eabi-gcc
ARM_SIZE  ?= arm-none-eabi-size
ARM_NM    ?= arm-none-eabi-nm
ARM_FLAGS := -mcpu=cortex-m4 -mthumb -Os -std=c99 -Wall -Wextra -Wpedantic -Wshadow \
             -Wstrict-prototypes -Werror -ffunction-sections -fdata-sections
ARM_LINK  := --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections
CROSS_DIR := $(BUILD)/cross
ARM_OBJ   := $(CROSS_DIR)/rsq-cortex-m4.o
ARM_ELF   := $(CROSS_DIR)/fw-cortex-m4.elf

# The object and the image, warnings as errors (arm-none-eabi uses short enums, which
# catches comparisons a host build lets pass).
cross-arm:
	@tools/deps.sh cross
	@mkdir -p $(CROSS_DIR)
	@echo "  cross $(ARM_CC) $(ARM_FLAGS) -DRSQ_NO_SOCKETS -DRSQ_IMPLEMENTATION -c rsq.h"
	@$(ARM_CC) $(ARM_FLAGS) -DRSQ_NO_SOCKETS -DRSQ_IMPLEMENTATION -x c -c rsq.h -o $(ARM_OBJ)
	@echo "  cross link tests/cross_fw.c ($(ARM_LINK))"
	@$(ARM_CC) $(ARM_FLAGS) $(ARM_LINK) tests/cross_fw.c -o $(ARM_ELF) 2>$(CROSS_DIR)/fw.err || { cat $(CROSS_DIR)/fw.err >&2; exit 1; }
	@if [ -s $(CROSS_DIR)/fw.err ]; then cat $(CROSS_DIR)/fw.err >&2; exit 1; fi

# gcc -m32: rsq.h with sockets as a 32-bit host object, then the test runner built
# 32-bit and its offline suites run (codec and URLs: the length and overflow arithmetic
# that differs with a 32-bit size_t and long). tools/deps.sh installs gcc-multilib on
# x86-64, and qemu-user when the kernel cannot run 32-bit programs itself (no IA32
# emulation): the runner then runs under qemu-i386. On x86-64 a missing 32-bit build
# is an error; a machine of another kind has no multilib package and says so.
cross-m32:
	@tools/deps.sh cross
	@mkdir -p $(CROSS_DIR)
	@if ! printf '#include <sys/socket.h>\n#include <math.h>\nint main(void){return socket(0,0,0)>0;}\n' | \
	     gcc -m32 -x c - -o $(CROSS_DIR)/m32-probe -lm >/dev/null 2>&1; then \
	  if [ "$$(uname -m)" = x86_64 ]; then \
	    echo "cross: gcc -m32 cannot build here although this is x86-64 (Debian: gcc-multilib)" >&2; exit 1; \
	  fi; \
	  $(call MAKE_SKIP,cross-m32,no 32-bit multilib for $$(uname -m)); \
	else \
	  set -e; run=""; \
	  if ! $(CROSS_DIR)/m32-probe >/dev/null 2>&1; then \
	    if command -v qemu-i386 >/dev/null 2>&1 && qemu-i386 $(CROSS_DIR)/m32-probe >/dev/null 2>&1; then run=qemu-i386; \
	    else echo "cross: this kernel cannot run 32-bit programs and qemu-i386 cannot either (Debian: qemu-user)" >&2; \
	      exit 1; fi; \
	  fi; \
	  echo "  cross gcc -m32 -std=c99 $(CWARN) -DRSQ_IMPLEMENTATION -c rsq.h"; \
	  gcc -m32 -std=c99 $(CWARN) -O2 -DRSQ_IMPLEMENTATION -x c -c rsq.h -o $(CROSS_DIR)/rsq-m32.o; \
	  gcc -m32 -std=c99 $(CFLAGS) $(CWARN) -o $(CROSS_DIR)/rsq_test_m32 $(TEST_SRC) -lm; \
	  for suite in test_codec_ test_url_; do \
	    if $$run $(CROSS_DIR)/rsq_test_m32 $$suite >$(CROSS_DIR)/m32.log 2>&1; then \
	      echo "cross: gcc -m32 $${suite%_}*$${run:+ (under $$run)}: $$(tail -1 $(CROSS_DIR)/m32.log)"; \
	    else cat $(CROSS_DIR)/m32.log; echo "cross: gcc -m32 $${suite%_}* failed" >&2; exit 1; fi; \
	  done; \
	fi

# RISC-V (rv32imac, picolibc), the other common firmware target, when Debian's
# toolchain can be had (else a skip listed in tests/skips.txt): the core only
# (RSQ_NO_SOCKETS), warnings as errors.
RV_CC ?= riscv64-unknown-elf-gcc
cross-riscv:
	@mkdir -p $(CROSS_DIR)
	@if command -v $(RV_CC) >/dev/null 2>&1; then \
	  echo "  cross $(RV_CC) -march=rv32imac -mabi=ilp32 -Os -DRSQ_NO_SOCKETS -c rsq.h"; \
	  $(RV_CC) --specs=picolibc.specs -march=rv32imac -mabi=ilp32 -Os -std=c99 -Wall -Wextra -Wpedantic \
	    -Wshadow -Wstrict-prototypes -Werror -ffunction-sections -fdata-sections -DRSQ_NO_SOCKETS \
	    -DRSQ_IMPLEMENTATION -x c -c rsq.h -o $(CROSS_DIR)/rsq-rv32.o; \
	else $(call MAKE_SKIP,cross-riscv,$(RV_CC) not installed); fi

cross: cross-arm cross-m32 cross-riscv
	@echo "cross: ok"

# The footprint table (tools/size_report.py): every documented switch set, the object
# and the core's share of a linked image (tests/size_core.c), the largest stack frame
# and the deepest publish and consume paths; the firmware set's object by section of
# rsq.h; fails on a stack frame over 512 bytes, reports the 24 KiB budget.
size: cross-arm
	@ARM_CC=$(ARM_CC) ARM_NM=$(ARM_NM) python3 tools/size_report.py $(CROSS_DIR)/size

test-examples:
	@tools/deps.sh test
	@tests/examples_test.sh

.PHONY: cross-arm cross-m32 cross-riscv
