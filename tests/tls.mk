# tls.mk - included by the Makefile: the OpenSSL transport example and its live test.
# `make test-tls` builds examples/tls_openssl.c (OpenSSL is the example's dependency,
# never rsq.h's) and runs tests/tls_test.sh against a private redis-server over TLS.

.PHONY: test-tls
TEST_EXTRA += test-tls

# An explicit rule: the examples' pattern rule links no libraries. Without OpenSSL's
# headers a plain `make` skips this example (tools/deps.sh test installs them).
$(BUILD)/examples/tls_openssl: examples/tls_openssl.c rsq.h
	@mkdir -p $(dir $@)
	@if printf '#include <openssl/ssl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1; then \
	  echo "$(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $< -lssl -lcrypto"; \
	  $(CC) -std=c99 $(CFLAGS) $(CWARN) -o $@ $< -lssl -lcrypto; \
	else echo "tls_openssl: skipped, OpenSSL headers not installed (Debian: libssl-dev)"; fi

test-tls: $(BUILD)/examples/tls_openssl
	@tests/tls_test.sh $(BUILD)/examples/tls_openssl
