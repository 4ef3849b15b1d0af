# servers.mk - included by the Makefile: `make test-servers`, the whole test runner
# against every server rsq supports: each Redis/Valkey release in ../shared/servers
# (SERVERS_DIR; built once per machine by its build.sh into ~/.cache/rsq-servers or
# $RSQ_SERVERS_CACHE, outside the clone), then the system's own redis-server. One
# summary line per server, then a table; fails when any server has a failed test or a
# skip that tests/skips.txt does not list. See tests/servers_test.sh.
#   make test-servers                                every server, the whole runner
#   make test-servers SERVERS="redis-5.0.14 system"  some of them
#   make test-servers SERVERS_FILTER="test_live_ test_consumer_"
#                                                    only those tests, on each
# Without ../shared/servers (a clone on its own) there is nothing to build: a skip,
# listed in tests/skips.txt.

.PHONY: test-servers

SERVERS        ?=
SERVERS_FILTER ?=

# the runner and the programs its tests start (proxy, chaos, nemesis...: the binaries
# of TEST_EXTRA, complete by now: this file is included after the fragments that add them)
test-servers: deps-test all $(filter $(BUILD)/%,$(TEST_EXTRA)) $(BUILD)/rsq_test
	@if [ -x "$(SERVERS_DIR)/build.sh" ]; then \
	  SERVERS_DIR="$(SERVERS_DIR)" RSQ_TEST=$(BUILD)/rsq_test SERVERS_LOGS=$(BUILD)/servers \
	    SERVERS_FILTER="$(SERVERS_FILTER)" tests/servers_test.sh $(SERVERS); \
	else $(call MAKE_SKIP,test-servers,no $(SERVERS_DIR)/build.sh); fi
