# interop.mk - included by the Makefile: rsq and ioredis (Node.js) on the same streams.
#   make test-interop   tests/interop/interop_test.sh against a private redis-server:
#                       ioredis writes / rsq reads, rsq writes / ioredis reads, and each
#                       reclaims what the other left pending. Node modules go into
#                       tests/interop/node_modules (git-ignored). Without node or npm,
#                       Debian's nodejs and npm are installed when running as root;
#                       otherwise the test is skipped with a message.

.PHONY: test-interop
TEST_EXTRA += test-interop

INTEROP_DIR := tests/interop

test-interop: rsq
	@tools/deps.sh test
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "interop: installing Debian's nodejs and npm"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || \
	      { echo "interop: apt-get install nodejs npm failed" >&2; exit 1; }; \
	  fi; \
	fi
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "interop: skipped: node and npm are not installed (Debian: apt-get install nodejs npm, as root)"; \
	else \
	  if [ ! -d $(INTEROP_DIR)/node_modules/ioredis ]; then \
	    echo "interop: npm install (ioredis) into $(INTEROP_DIR)/node_modules"; \
	    (cd $(INTEROP_DIR) && npm install --no-audit --no-fund --loglevel=error >/dev/null) || exit 1; \
	  fi; \
	  $(INTEROP_DIR)/interop_test.sh; \
	fi
