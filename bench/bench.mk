# bench/bench.mk - included by the Makefile when present.
#   make bench        installs the peers when missing (tools/deps.sh bench), builds
#                     build/bench/rsq_bench, runs it against one private redis-server and
#                     writes the table to build/bench.txt (a few minutes on 2 cores).
#                     BENCH_SCALE=0.1 make bench for a quick run; BENCH_UNIX=1 for the
#                     server's unix socket instead of TCP.
#   make bench-quick  the same at BENCH_SCALE=0.05, for CI: fails only when a measurement
#                     of an installed contender does not complete (never on figures).
#                     Writes build/bench-quick.txt. Not part of `make test`.
#   BENCH_ONLY=abcd (a subset) and BENCH_VERBOSE=1 (per-run rates and client CPU per
#   message) help when profiling; see bench/bench.c.
# The hiredis contender is compiled in when its header is installed; a missing peer is
# skipped with a note in the table.

BENCH_DIR := $(BUILD)/bench
BENCH_BIN := $(BENCH_DIR)/rsq_bench
BENCH_HIREDIS := $(wildcard /usr/include/hiredis/hiredis.h)
BENCH_DEFS := $(if $(BENCH_HIREDIS),-DBENCH_HIREDIS)
BENCH_OBJS := $(BENCH_DIR)/bench.o $(BENCH_DIR)/malloc_count.o $(BENCH_DIR)/server.o \
              $(if $(BENCH_HIREDIS),$(BENCH_DIR)/peer_hiredis.o)
BENCH_LIBS := $(if $(BENCH_HIREDIS),-lhiredis)

.PHONY: bench bench-quick bench-build deps-bench bench-force

deps-bench:
	@tools/deps.sh bench || echo "bench: could not install every peer; missing ones are skipped" >&2

# A sub-make builds, so that a peer installed just now is seen.
bench: deps-bench
	@$(MAKE) --no-print-directory bench-build
	$(BENCH_BIN) -o $(BUILD)/bench.txt

bench-quick: deps-bench
	@$(MAKE) --no-print-directory bench-build
	BENCH_SCALE=0.05 $(BENCH_BIN) -o $(BUILD)/bench-quick.txt

bench-build: $(BENCH_BIN)

# Rebuild when the peer set or the flags change.
$(BENCH_DIR)/flags: bench-force
	@mkdir -p $(BENCH_DIR)
	@echo '$(CC) $(CFLAGS) $(BENCH_DEFS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(BENCH_DEFS)' > $@

$(BENCH_DIR)/bench.o: bench/bench.c bench/bench.h rsq.h tests/server.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) $(BENCH_DEFS) -c -o $@ $<

$(BENCH_DIR)/malloc_count.o: bench/malloc_count.c bench/bench.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -c -o $@ $<

$(BENCH_DIR)/server.o: tests/server.c tests/server.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -c -o $@ $<

$(BENCH_DIR)/peer_hiredis.o: bench/peer_hiredis.c bench/bench.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -c -o $@ $<

$(BENCH_BIN): $(BENCH_OBJS)
	$(CC) $(CFLAGS) -o $@ $(BENCH_OBJS) $(BENCH_LIBS)

# make bench-scale: bench/scale.mk
-include bench/scale.mk
