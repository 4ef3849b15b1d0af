# bench/scale.mk - included by bench/bench.mk.
#   make bench-scale          how rsq's costs grow with the work (issue 19): pending-list
#                             size up to 1M, consumers up to 64 processes, groups up to
#                             64, priority levels x shards; one private redis-server.
#                             Table in build/scale/scale.txt, CSV in build/scale/*.csv,
#                             charts build/scale/scale.png and .svg (gnuplot). Needs
#                             about 1 GiB of memory for the server; ~10 min on 2 cores.
#   make bench-scale QUICK=1  the reduced run (pending up to 10k, 4 consumers, 8 groups):
#                             about a minute, for CI. Goals are reported, never asserted:
#                             it fails only when a measurement cannot run or a count is
#                             wrong (a duplicate, a lost message, a group not reported).
#   make bench-wake           publish-to-handler latency of a waiting consumer on one node
#                             and on a private 3-master cluster, 1 and 6 shards (the
#                             cluster consumer that waits, issue 19): build/wake.txt.
#                             WAKE_N=500 messages per row, one per WAKE_PERIOD_MS=20.

SCALE_DIR := $(BUILD)/scale
SCALE_BIN := $(BENCH_DIR)/rsq_bench_scale

WAKE_BIN := $(BENCH_DIR)/rsq_bench_wake

.PHONY: bench-scale deps-bench-scale bench-wake

deps-bench-scale:
	@tools/deps.sh bench-scale || echo "bench-scale: gnuplot not installed: no charts" >&2

bench-scale: deps-bench-scale $(SCALE_BIN)
	@mkdir -p $(SCALE_DIR)
	$(SCALE_BIN) $(if $(QUICK),-q) -d $(SCALE_DIR)
	@if command -v gnuplot >/dev/null 2>&1; then \
	  gnuplot -e "dir='$(SCALE_DIR)'" bench/scale.gp && echo "charts: $(SCALE_DIR)/scale.png $(SCALE_DIR)/scale.svg"; \
	else echo "gnuplot not installed: no charts (tools/deps.sh bench-scale installs it)"; fi

$(BENCH_DIR)/scale.o: bench/scale.c bench/bench.h rsq.h tests/server.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -c -o $@ $<

$(SCALE_BIN): $(BENCH_DIR)/scale.o $(BENCH_DIR)/server.o
	$(CC) $(CFLAGS) -o $@ $^

bench-wake: $(WAKE_BIN)
	@tools/deps.sh demo
	$(WAKE_BIN) -o $(BUILD)/wake.txt

$(BENCH_DIR)/wake.o: bench/wake.c rsq.h tests/server.h $(BENCH_DIR)/flags
	$(CC) -std=c99 $(CFLAGS) $(CWARN) -c -o $@ $<

$(WAKE_BIN): $(BENCH_DIR)/wake.o $(BENCH_DIR)/server.o
	$(CC) $(CFLAGS) -o $@ $^
