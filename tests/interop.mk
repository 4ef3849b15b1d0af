# interop.mk - included by the Makefile: rsq and ioredis (Node.js) on the same streams.
#   make test-interop   tests/interop/interop_test.sh against a private redis-server:
#                       ioredis writes / rsq reads, rsq writes / ioredis reads, and each
#                       reclaims what the other left pending. Node modules go into
#                       tests/interop/node_modules (git-ignored), installed by npm from
#                       tests/interop/package.json. tools/deps.sh test installs Debian's
#                       nodejs and npm; without them the test is a make-level skip
#                       (MAKE_SKIP), which fails unless tests/skips.txt lists it.

.PHONY: test-interop
TEST_EXTRA += test-interop

# deps-test first (make builds prerequisites left to right): node and npm on a fresh machine
test-interop: deps-test rsq
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  tests/interop/interop_test.sh; \
	else \
	  $(call MAKE_SKIP,interop,node and npm are not installed (tools/deps.sh test installs Debian's nodejs and npm)); \
	fi
