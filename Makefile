# rsq - make (tool and examples), make test, make demo, make install.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Werror
CWARN   := $(WARN) -Wstrict-prototypes
BUILD   := build
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
TEST_SRC := tests/main.c tests/impl.c tests/server.c $(wildcard tests/test_*.c)

.PHONY: all test check-compile demo clean deps-test sanitize valgrind chaos install uninstall

# Make targets that `make test`, `make sanitize` and `make valgrind` build (or run)
# before the runner, whose summary line comes last. A rule's prerequisites are expanded
# when make reads the rule, so everything is appended to TEST_EXTRA here, above the
# rules that use it: the fault-injecting proxy and the chaos program (both run by the
# runner's tests), then whatever the optional parts' fragments add. The check at the
# end of this file stops make if anything is appended later.
TEST_EXTRA := $(BUILD)/proxy $(BUILD)/chaos $(BUILD)/switches

# A part of `make test` that cannot run here says so in a recipe with
#   $(call MAKE_SKIP,NAME,REASON)
# which prints "skip NAME: REASON" and fails unless tests/skips.txt lists NAME with a
# pattern that REASON matches (the runner's rule for its tests; see tests/main.c).
MAKE_SKIP = echo "skip $(1): $(2)"; \
  while read -r n p; do [ "$$n" = "$(1)" ] && case "$(2)" in $$p) exit 0;; esac; done < tests/skips.txt; \
  echo "skip $(1) is not listed in tests/skips.txt: list it with its reason, or make it run" >&2; exit 1

-include tests/fuzz/fuzz.mk tests/cross.mk tests/tls.mk tests/interop.mk bench/bench.mk tests/nemesis.mk tests/servers.mk tests/cpus.mk examples/firmware/firmware.mk

all: $(if $(wildcard tools/rsq.c),rsq) $(EXAMPLES)

rsq: tools/rsq.c rsq.h
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ tools/rsq.c

# make install [PREFIX=/usr/local] [DESTDIR=...]: the tool, the header and the manual,
# as packagers expect (DESTDIR is a staging root, PREFIX where they run from).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
INSTALL    ?= install

install: rsq
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(MANDIR)/man1"
	$(INSTALL) -m 755 rsq "$(DESTDIR)$(BINDIR)/rsq"
	$(INSTALL) -m 644 rsq.h "$(DESTDIR)$(INCLUDEDIR)/rsq.h"
	$(INSTALL) -m 644 tools/rsq.1 "$(DESTDIR)$(MANDIR)/man1/rsq.1"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/rsq" "$(DESTDIR)$(INCLUDEDIR)/rsq.h" "$(DESTDIR)$(MANDIR)/man1/rsq.1"

$(BUILD)/examples/%: examples/%.c rsq.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $<

# rsq.h with the parts a firmware leaves out left out (run by tests/test_switches.c)
$(BUILD)/switches: tests/switches.c rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -DRSQ_NO_CLUSTER -DRSQ_NO_ADMIN -DRSQ_SHORT_ERRORS -o $@ tests/switches.c

$(BUILD)/rsq_test: $(TEST_SRC) tests/*.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $(TEST_SRC) -lm

# The compile matrix: C99/C11 with gcc and clang, C++11 with g++ and clang++,
# RSQ_STATIC in two translation units, declarations and implementation apart,
# RSQ_NO_SOCKETS, and every documented combination of the switches that leave parts
# out (RSQ_NO_CLUSTER, RSQ_NO_ADMIN, RSQ_SHORT_ERRORS). Warnings are errors throughout.
check-compile:
	@mkdir -p $(BUILD)/compile
	@set -e; for cc in gcc clang; do for std in c99 c11; do \
	  echo "  compile $$cc -std=$$std"; \
	  $$cc -std=$$std $(CWARN) -O2 -c tests/compile/impl.c -o $(BUILD)/compile/impl.o; \
	  $$cc -std=$$std $(CWARN) -O2 -c tests/compile/user.c -o $(BUILD)/compile/user.o; \
	  $$cc -o $(BUILD)/compile/two-tu $(BUILD)/compile/impl.o $(BUILD)/compile/user.o; \
	  $$cc -std=$$std $(CWARN) -O2 -o $(BUILD)/compile/static tests/compile/static_a.c tests/compile/static_b.c; \
	  $(BUILD)/compile/static; \
	  $$cc -std=$$std $(CWARN) -O2 -c tests/compile/nosockets.c -o $(BUILD)/compile/nosockets.o; \
	done; done
	@set -e; for cc in gcc clang; do for sw in RSQ_NO_CLUSTER RSQ_NO_ADMIN RSQ_SHORT_ERRORS \
	    "RSQ_NO_CLUSTER RSQ_NO_ADMIN" "RSQ_NO_SOCKETS RSQ_NO_CLUSTER RSQ_NO_ADMIN" \
	    "RSQ_NO_SOCKETS RSQ_NO_CLUSTER RSQ_NO_ADMIN RSQ_SHORT_ERRORS"; do \
	  echo "  compile $$cc -std=c99 $$sw"; \
	  $$cc -std=c99 $(CWARN) -O2 $$(for d in $$sw; do printf -- '-D%s ' $$d; done) -DRSQ_IMPLEMENTATION \
	    -x c -c rsq.h -o $(BUILD)/compile/switches.o; \
	done; done
	@echo "  formats: no %zu, %lld, %llu or %j in rsq.h (newlib-nano's printf has none of them)"
	@! grep -n -e '"[^"]*%[-+ #0-9.*]*\(z\|ll\|j\|L\)[a-zA-Z][^"]*"' -e 'PRI[diuxX]64' rsq.h
	@echo "  compile gcc -fshort-enums (as firmware toolchains lay out enums)"
	@gcc -std=c99 $(CWARN) -O2 -fshort-enums -c tests/compile/impl.c -o $(BUILD)/compile/short-enums.o
	@set -e; for cxx in g++ clang++; do \
	  echo "  compile $$cxx -std=c++11"; \
	  $$cxx -std=c++11 $(WARN) -O2 -o $(BUILD)/compile/cxx tests/compile/cxx.cc; $(BUILD)/compile/cxx; \
	done

deps-test:
	@tools/deps.sh test

# Redis 6.2.16, for the tests of its XAUTOCLAIM/XCLAIM quirks: built once per machine
# (cached outside the clone) from the release tarballs in ../shared/servers when that
# folder is there; without it those tests skip (listed in tests/skips.txt).
SERVERS_DIR ?= $(abspath ../shared/servers)
WITH_62 = RSQ_REDIS_6_2="$$( [ -x $(SERVERS_DIR)/build.sh ] && $(SERVERS_DIR)/build.sh redis-6.2.16 )"

test: deps-test check-compile all $(TEST_EXTRA) $(BUILD)/rsq_test
	$(WITH_62) $(BUILD)/rsq_test

TEST_EXTRA_READ := $(TEST_EXTRA)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, then valgrind.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/rsq_test_san: $(TEST_SRC) tests/*.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(SAN_FLAGS) $(CWARN) -o $@ $(TEST_SRC) -lm

sanitize: deps-test all $(TEST_EXTRA) $(BUILD)/rsq_test_san
	$(WITH_62) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/rsq_test_san

$(BUILD)/rsq_test_vg: $(TEST_SRC) tests/*.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O1 -g $(CWARN) -o $@ $(TEST_SRC) -lm

valgrind: deps-test all $(TEST_EXTRA) $(BUILD)/rsq_test_vg
	@tools/deps.sh valgrind
	$(WITH_62) RSQ_TEST_SLOW=1 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --error-exitcode=9 $(BUILD)/rsq_test_vg

# Chaos: producers and consumers through a connection-cutting proxy while consumers
# are SIGKILLed and redis-server restarts; fails on any lost message. `make test` runs
# a reduced version (tests/test_chaos.c); this is the full scale.
# (in TEST_EXTRA, above; the runner finds it through RSQ_CHAOS_BIN or at build/chaos)
$(BUILD)/chaos: tests/chaos.c tests/server.c tests/server.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ tests/chaos.c tests/server.c

export RSQ_CHAOS_BIN ?= $(abspath $(BUILD)/chaos)

# The fault-injecting proxy of the chaos, hostile and proxy tests (in TEST_EXTRA,
# above); they find it through RSQ_PROXY_BIN or at build/proxy.
$(BUILD)/proxy: tests/proxy.c
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ tests/proxy.c

export RSQ_PROXY_BIN ?= $(abspath $(BUILD)/proxy)

# tests/test_hostile.c includes tests/fake_server.c: rebuild the runners when it changes.
$(BUILD)/rsq_test $(BUILD)/rsq_test_san $(BUILD)/rsq_test_vg: tests/fake_server.c tests/fake_server.h

chaos: deps-test $(BUILD)/chaos $(BUILD)/proxy
	$(BUILD)/chaos --messages 100000 --producers 4 --consumers 3 --restarts 4 --kills 12 --kill-ms 1000 \
	  --restart-ms 3000 --cut-every-bytes 300000 --timeout-s 1800

demo: $(BUILD)/demo
	@tools/deps.sh demo
	$(BUILD)/demo

$(BUILD)/demo: tools/demo.c tests/server.c tests/server.h rsq.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ tools/demo.c tests/server.c

clean:
	rm -rf $(BUILD) rsq

# TEST_EXTRA must be complete before the test rules are read (see its definition).
ifneq ($(TEST_EXTRA),$(TEST_EXTRA_READ))
$(error TEST_EXTRA grew after the test rules were read: $(filter-out $(TEST_EXTRA_READ),$(TEST_EXTRA)); append it before them)
endif
