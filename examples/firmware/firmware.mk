# firmware.mk - included by the Makefile: the firmware example (examples/firmware/),
# a bare-metal Cortex-M4 program using rsq over its UART, built with arm-none-eabi-gcc
# and newlib-nano and run under qemu-system-arm (board mps2-an386).
#   make firmware       builds build/firmware/fw.elf (warnings are errors) and prints
#                       its flash and RAM use and rsq.h's share of them
#   make test-firmware  the image, then tests/firmware_test.sh: it runs under qemu with
#                       UART0 joined to a private redis-server, and the server side is
#                       checked with redis-cli; then once more with nothing on the line
#                       (the program must fail with its connect error, not hang)
# tools/deps.sh firmware installs gcc-arm-none-eabi, libnewlib-arm-none-eabi and
# qemu-system-arm (and redis-server, redis-tools).

.PHONY: firmware test-firmware fw-deps
TEST_EXTRA += test-firmware

FW_CC      ?= arm-none-eabi-gcc
FW_SIZE    ?= arm-none-eabi-size
FW_DIR     := $(BUILD)/firmware
FW_ELF     := $(FW_DIR)/fw.elf
FW_NAMES   := startup uart_transport rsq_impl main
FW_OBJ     := $(FW_NAMES:%=$(FW_DIR)/%.o)
# The switches that shape rsq.h's declarations, the same for every file.
FW_SWITCHES := -DRSQ_NO_SOCKETS -DRSQ_NO_CLUSTER -DRSQ_NO_ADMIN -DRSQ_MAX_DEPTH_CAP=8
FW_CFLAGS  := -mcpu=cortex-m4 -mthumb -Os -g -std=c99 $(CWARN) -ffunction-sections -fdata-sections \
              -fstack-usage $(FW_SWITCHES)
FW_LDFLAGS := -mcpu=cortex-m4 -mthumb --specs=nano.specs -nostartfiles -Wl,--gc-sections \
              -Wl,--fatal-warnings -T examples/firmware/mps2-an386.ld -Wl,-Map=$(FW_DIR)/fw.map

fw-deps:
	@tools/deps.sh firmware

$(FW_DIR)/%.o: examples/firmware/%.c examples/firmware/board.h rsq.h | fw-deps
	@mkdir -p $(FW_DIR)
	$(FW_CC) $(FW_CFLAGS) -c $< -o $@

$(FW_ELF): $(FW_OBJ) examples/firmware/mps2-an386.ld
	$(FW_CC) $(FW_LDFLAGS) -o $@ $(FW_OBJ)

# Flash: what the image stores (.text, .rodata, .ARM.exidx, and .data's initial
# values); RAM: .data, .bss and the stack. rsq.h's share: rsq_impl.o's input sections
# that --gc-sections kept, from the link map.
firmware: $(FW_ELF)
	@$(FW_SIZE) -A $(FW_ELF) | awk -v elf=$(FW_ELF) -v sw="$(FW_SWITCHES)" ' \
	  $$1 ~ /^\./ { s[$$1] = $$2 } \
	  END { flash = s[".text"] + s[".rodata"] + s[".ARM.exidx"] + s[".data"]; \
	        ram = s[".data"] + s[".bss"] + s[".stack"]; \
	        printf "firmware: %s (Cortex-M4 -Os, newlib-nano; %s)\n", elf, sw; \
	        printf "  flash %6d bytes: .text %d, .rodata %d, .ARM.exidx %d, .data %d\n", flash, s[".text"], \
	          s[".rodata"], s[".ARM.exidx"], s[".data"]; \
	        printf "  RAM   %6d bytes: .data %d, .bss %d, stack %d\n", ram, s[".data"], s[".bss"], s[".stack"] }'
	@awk ' \
	  function hex(h,  i, v) { v = 0; h = tolower(substr(h, 3)); \
	    for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v } \
	  function add(sec, size, file,  p) { if (file ~ /rsq_impl\.o$$/) { split(sec, p, "."); t[p[2]] += hex(size) } } \
	  /^Linker script and memory map/ { on = 1 } \
	  on && /^ \.(text|rodata|data|bss)[^ ]*$$/ { sec = $$1; getline; if (NF == 3) add(sec, $$2, $$3); next } \
	  on && /^ \.(text|rodata|data|bss)[^ ]* +0x/ { add($$1, $$3, $$4) } \
	  END { printf "  of which rsq.h (rsq_impl.o): .text %d, .rodata %d, .data %d, .bss %d\n", t["text"], t["rodata"], t["data"], t["bss"] }' \
	  $(FW_DIR)/fw.map
	@echo "  largest stack frames of the objects (-fstack-usage, bytes):"
	@cat $(FW_DIR)/*.su | sort -k2,2nr | head -3 | awk '{ n = split($$1, p, ":"); printf "    %5d  %s\n", $$2, p[n] }'

test-firmware: firmware
	@tools/deps.sh firmware
	@tests/firmware_test.sh $(FW_ELF)
