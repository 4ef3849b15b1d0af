# tests/fuzz/fuzz.mk - included by the Makefile (which defines BUILD, CC, CFLAGS, CWARN
# and TEST_EXTRA before including it).
#   make fuzz [FUZZ_SECONDS=60]   build the fuzz targets, run each for FUZZ_SECONDS,
#                                 print the executions; fails if a target crashed
#   make fuzz-build               build them only

# This file is read before the Makefile's first rule: keep `all` the default goal.
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := all
endif

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := reader url
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build fuzz-deps

fuzz-deps:
	@tools/deps.sh fuzz

fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c rsq.h | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $<

# Each target runs on a working corpus in $(BUILD)/fuzz/corpus_NAME (new inputs go
# there) seeded from tests/fuzz/corpus_NAME; crashes land in $(BUILD)/fuzz/crash_NAME/.
fuzz: fuzz-build
	@status=0; for t in $(FUZZ_TARGETS); do \
	  dir=$(BUILD)/fuzz; mkdir -p $$dir/corpus_$$t $$dir/crash_$$t; \
	  echo "  fuzz $$t for $(FUZZ_SECONDS) s"; \
	  if $$dir/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	       -artifact_prefix=$$dir/crash_$$t/ $$dir/corpus_$$t tests/fuzz/corpus_$$t > $$dir/$$t.log 2>&1; \
	  then result=ok; else result=CRASHED; status=1; fi; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$dir/$$t.log | tail -n 1); \
	  [ -n "$$execs" ] || execs=$$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' $$dir/$$t.log | tail -n 1); \
	  echo "  fuzz $$t: $${execs:-?} executions, $$result (log: $$dir/$$t.log)"; \
	  if [ $$result != ok ]; then grep -E 'ERROR|SUMMARY|check failed|split-dependent|Test unit written' $$dir/$$t.log | head -n 8; fi; \
	done; exit $$status
