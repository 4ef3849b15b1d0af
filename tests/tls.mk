# tls.mk - included by the Makefile: the OpenSSL transport example and its live test.
# `make test-tls` builds examples/tls_openssl.c (OpenSSL is the example's dependency,
# never rsq.h's) and runs tests/tls_test.sh against a private redis-server over TLS.
# tools/deps.sh test installs what it needs (libssl-dev, openssl; Debian's redis-server
# is built with TLS). Without OpenSSL's headers, or with a redis-server built without
# TLS (tls_test.sh exits 77), the test is a make-level skip (MAKE_SKIP), which fails
# unless tests/skips.txt lists it.

.PHONY: test-tls
TEST_EXTRA += test-tls

# An explicit rule: the examples' pattern rule links no libraries. Without OpenSSL's
# headers a plain `make` leaves this example out (make test-tls then fails, see above).
$(BUILD)/examples/tls_openssl: examples/tls_openssl.c rsq.h
	@mkdir -p $(dir $@)
	@if printf '#include <openssl/ssl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1; then \
	  echo "$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $< -lssl -lcrypto"; \
	  $(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $< -lssl -lcrypto; \
	else echo "tls_openssl: not built, OpenSSL headers not installed (Debian: libssl-dev; tools/deps.sh test)"; fi

# deps-test first (make builds prerequisites left to right), so that the example finds
# OpenSSL's headers on a fresh machine.
test-tls: deps-test $(BUILD)/examples/tls_openssl
	@if [ ! -x $(BUILD)/examples/tls_openssl ]; then \
	  $(call MAKE_SKIP,tls,OpenSSL headers not installed (Debian: libssl-dev)); \
	fi; \
	rc=0; tests/tls_test.sh $(BUILD)/examples/tls_openssl || rc=$$?; \
	if [ $$rc = 77 ]; then $(call MAKE_SKIP,tls,redis-server built without TLS support); fi; \
	exit $$rc
