# cpus.mk - included by the Makefile: `make test-cpus`, the test runner built for other
# CPUs and run under qemu-user on this machine: 32-bit ARM (armhf: 32-bit size_t and
# long, little-endian) and s390x (64-bit, big-endian). Each runs the offline suites
# (codec, URLs) and the live suites (client, producer, consumer) against this machine's
# redis-server: qemu-user passes the sockets, fork and exec of the tests through to
# this kernel, so the servers and redis-cli they start are the native ones.
#   make test-cpus                  both CPUs
#   make test-cpus CPUS=armhf       one of them
#   make test-cpus CPU_SUITES="..." other runner filters (default below)
# The compiler is clang with --target and Debian's cross sysroot, libgcc and binutils
# (libc6-dev-armhf-cross, libgcc-12-dev-armhf-cross, binutils-arm-linux-gnueabihf,
# and the same for s390x; tools/deps.sh cpus installs them): Debian 12's
# gcc-arm-linux-gnueabihf and gcc-s390x-linux-gnu conflict with gcc-multilib, which
# the -m32 build of `make cross` needs. With CPU_GCC=1, TRIPLE-gcc is used instead
# (when installed). Warnings are errors, as everywhere. Each binary is checked to be
# what it claims (ELF class and byte order) before it runs.

.PHONY: test-cpus deps-cpus

CPUS       ?= armhf s390x
CPU_SUITES ?= test_codec_ test_url_ test_live_ test_producer_ test_consumer_
CPU_DIR    := $(BUILD)/cpus
CPU_GCC    ?= 0

# name: triple, qemu, ELF class (1: 32-bit, 2: 64-bit), ELF data (1: little, 2: big endian)
cpu_armhf := arm-linux-gnueabihf qemu-arm 1 1
cpu_s390x := s390x-linux-gnu qemu-s390x 2 2
cpu_triple = $(word 1,$(cpu_$(1)))
cpu_qemu   = $(word 2,$(cpu_$(1)))
cpu_cc     = $(if $(filter 1,$(CPU_GCC)),$(call cpu_triple,$(1))-gcc,clang --target=$(call cpu_triple,$(1)))

deps-cpus:
	@tools/deps.sh cpus

$(CPU_DIR)/rsq_test_%: $(TEST_SRC) tests/*.h tests/fake_server.c tests/fake_server.h rsq.h | deps-cpus
	@mkdir -p $(CPU_DIR)
	@test -n "$(cpu_$*)" || { echo "test-cpus: unknown CPU $* (have: armhf s390x)" >&2; exit 1; }
	$(call cpu_cc,$*) -std=c99 $(CFLAGS) $(CWARN) -o $@ $(TEST_SRC) -lm

test-cpus: deps-test $(BUILD)/proxy $(BUILD)/chaos all $(foreach c,$(CPUS),$(CPU_DIR)/rsq_test_$(c))
	@set -e; for cpu in $(CPUS); do \
	  case $$cpu in armhf) set -- $(cpu_armhf);; s390x) set -- $(cpu_s390x);; esac; \
	  bin=$(CPU_DIR)/rsq_test_$$cpu; \
	  cls=$$(od -An -tu1 -j4 -N1 $$bin | tr -d ' '); dat=$$(od -An -tu1 -j5 -N1 $$bin | tr -d ' '); \
	  if [ "$$cls" != $$3 ] || [ "$$dat" != $$4 ]; then \
	    echo "test-cpus: $$bin is ELF class $$cls, data $$dat; expected $$3, $$4" >&2; exit 1; fi; \
	  run="$$2 -L /usr/$$1"; t0=$$(date +%s); p=0; f=0; k=0; \
	  for suite in $(CPU_SUITES); do \
	    if ! $$run $$bin $$suite >$(CPU_DIR)/$$cpu-$$suite.log 2>&1; then \
	      cat $(CPU_DIR)/$$cpu-$$suite.log; echo "test-cpus: $$cpu ($$2): $${suite%_}* failed" >&2; exit 1; fi; \
	    last=$$(tail -1 $(CPU_DIR)/$$cpu-$$suite.log); \
	    set -- $$last; p=$$((p + $$1)); f=$$((f + $$3)); k=$$((k + $$5)); \
	    case $$cpu in armhf) set -- $(cpu_armhf);; s390x) set -- $(cpu_s390x);; esac; \
	  done; \
	  echo "test-cpus: $$cpu ($$1 under $$2, $$([ $$3 = 1 ] && echo 32 || echo 64)-bit, $$([ $$4 = 1 ] && echo little || echo big)-endian):" \
	    "$$p passed, $$f failed, $$k skipped in $$(( $$(date +%s) - t0 )) s ($(CPU_SUITES))"; \
	done
