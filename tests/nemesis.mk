# nemesis.mk - included by the Makefile: the nemesis test (tests/nemesis.c).
#   make nemesis [SEED=1] [DURATION=60] [NEMESIS_ARGS=...]
#       one seeded run of DURATION seconds: producers and consumers (processes) against
#       a private redis-server while a nemesis deletes, trims, destroys, kills, freezes
#       and restarts; exit status 1 on any breach of the delivery contract, with the
#       seed and the offending messages' history. More options: build/nemesis --help.
# `make test` runs a short version with fixed seeds (tests/test_nemesis.c), which finds
# the binary through RSQ_NEMESIS_BIN or at build/nemesis.

# This file is read before the Makefile's first rule: keep `all` the default goal.
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := all
endif

SEED ?= 1
DURATION ?= 60
NEMESIS_ARGS ?=

$(BUILD)/nemesis: tests/nemesis.c tests/server.c tests/server.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ tests/nemesis.c tests/server.c

# appended here, above the test rules (which expand TEST_EXTRA when they are read)
TEST_EXTRA += $(BUILD)/nemesis
export RSQ_NEMESIS_BIN ?= $(abspath $(BUILD)/nemesis)

.PHONY: nemesis
nemesis: deps-test $(BUILD)/nemesis
	$(BUILD)/nemesis --seed $(SEED) --duration $(DURATION) $(NEMESIS_ARGS)
