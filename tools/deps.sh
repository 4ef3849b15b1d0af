#!/usr/bin/env bash
# deps.sh - installs what a make target needs from Debian's packages, when missing.
# Usage: tools/deps.sh test|demo|bench|bench-scale|fuzz|cross|firmware|cpus|valgrind
# Required packages must install; optional ones may fail (their checks then skip).
set -euo pipefail
want=()
nice=()
have() { command -v "$1" >/dev/null 2>&1; }
# gcc -m32, the 32-bit host build of `make cross` (tests/cross.mk), on x86-64: Debian's
# gcc-multilib builds it; a kernel without 32-bit support (no IA32 emulation) runs the
# result under qemu-i386 from qemu-user. Other machines have no multilib package.
m32_probe() {
  printf '#include <sys/socket.h>\n#include <math.h>\nint main(void){return socket(0,0,0)>0;}\n' |
    gcc -m32 -x c - -o "$1" -lm >/dev/null 2>&1
}
m32_build() { [ "$(uname -m)" != x86_64 ] || { have gcc && m32_probe /dev/null; } || want+=(gcc-multilib); }
m32_run() {
  local probe rc=0
  [ "$(uname -m)" = x86_64 ] && have gcc && ! have qemu-i386 || return 0
  probe="$(mktemp)"
  if m32_probe "$probe"; then "$probe" >/dev/null 2>&1 || rc=$?; fi
  rm -f "$probe"
  [ $rc -lt 126 ] || want+=(qemu-user) # 126: the kernel cannot execute it
}
m32=0
promtool=0
case "${1:-test}" in
  demo) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools); have cc || want+=(gcc) ;;
  test) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools)
        have gcc || want+=(gcc); have g++ || want+=(g++); have clang || want+=(clang)
        # TLS (tests/tls.mk): Debian's redis-server is built with TLS; the example needs
        # OpenSSL's headers and the test makes its certificates with openssl
        have openssl || want+=(openssl); [ -f /usr/include/openssl/ssl.h ] || want+=(libssl-dev)
        # interop with ioredis (tests/interop.mk): npm installs ioredis itself
        have node || want+=(nodejs); have npm || want+=(npm)
        have arm-none-eabi-gcc || want+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
        have qemu-system-arm || want+=(qemu-system-arm)
        have riscv64-unknown-elf-gcc || nice+=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)
        # the rsq tool's tests: JSON output parsed by jq, the man page checked by groff,
        # man and mandoc, the progress line seen on a terminal made by script;
        # promtool (Prometheus output) below
        have jq || want+=(jq); have groff || want+=(groff-base); have man || want+=(man-db)
        have mandoc || want+=(mandoc); have script || want+=(bsdutils); have col || want+=(bsdextrautils)
        promtool=1
        m32=1 ;;
  bench) have redis-server || want+=(redis-server); have redis-benchmark || want+=(redis-tools)
         [ -f /usr/include/hiredis/hiredis.h ] || nice+=(libhiredis-dev) ;;
  # make bench-scale (bench/scale.mk): the charts are drawn by gnuplot (cairo PNG, SVG)
  bench-scale) have redis-server || want+=(redis-server); have gnuplot || nice+=(gnuplot-nox) ;;
  fuzz) have clang || want+=(clang); ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || want+=(libclang-rt-14-dev) ;;
  cross) have arm-none-eabi-gcc || want+=(gcc-arm-none-eabi libnewlib-arm-none-eabi); have python3 || want+=(python3)
         have riscv64-unknown-elf-gcc || nice+=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)
         m32=1 ;;
  # the firmware example (examples/firmware/firmware.mk): the Cortex-M4 toolchain with
  # newlib-nano, and the board emulator that runs it against redis-server
  firmware) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools)
            have arm-none-eabi-gcc || want+=(gcc-arm-none-eabi)
            [ -f /usr/lib/arm-none-eabi/newlib/libc_nano.a ] || want+=(libnewlib-arm-none-eabi)
            have qemu-system-arm || want+=(qemu-system-arm) ;;
  valgrind) have valgrind || want+=(valgrind) ;;
  # the runner for other CPUs (tests/cpus.mk): clang --target with Debian's cross libc,
  # libgcc and binutils (not gcc-TRIPLE, which conflicts with gcc-multilib), run under
  # qemu-user against the native redis-server
  cpus) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools)
        have clang || want+=(clang); have qemu-arm && have qemu-s390x || want+=(qemu-user)
        for t in armhf:arm-linux-gnueabihf s390x:s390x-linux-gnu; do
          a=${t%%:*} tr=${t#*:}
          [ -f /usr/$tr/include/stdio.h ] || want+=(libc6-dev-$a-cross)
          ls /usr/lib/gcc-cross/$tr/*/libgcc.a >/dev/null 2>&1 || want+=(libgcc-12-dev-$a-cross)
          have $tr-ld || want+=(binutils-$tr)
        done ;;
esac

SUDO=""
updated=0
install_wanted() {
  [ ${#want[@]} -eq 0 ] && [ ${#nice[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    if have sudo; then SUDO="sudo"; else echo "need root to install: ${want[*]} ${nice[*]}" >&2; [ ${#want[@]} -eq 0 ]; return $?; fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  [ $updated = 1 ] || { $SUDO apt-get update -qq >/dev/null; updated=1; }
  if [ ${#want[@]} -gt 0 ]; then
    echo "installing: ${want[*]}" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  fi
  if [ ${#nice[@]} -gt 0 ]; then
    echo "installing (optional): ${nice[*]}" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "${nice[@]}" >/dev/null ||
      echo "could not install ${nice[*]}: the checks that need them are skipped" >&2
  fi
  want=()
  nice=()
}

# promtool checks the tool's Prometheus output (tests/test_tool.c). Debian ships it in
# the prometheus package, whose installation would also set up a server and its
# service; only promtool is taken from the package, unpacked into
# ${XDG_CACHE_HOME:-~/.cache}/rsq-tools, where the tests look for it.
promtool_get() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/rsq-tools" tmp
  have promtool || [ -x "$dir/promtool" ] && return 0
  [ $updated = 1 ] || { $SUDO apt-get update -qq >/dev/null; updated=1; }
  tmp="$(mktemp -d)"
  echo "unpacking promtool from Debian's prometheus package into $dir" >&2
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) && dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" &&
    mkdir -p "$dir" && cp "$tmp/x/usr/bin/promtool" "$dir/promtool"; then rm -rf "$tmp"; return 0; fi
  rm -rf "$tmp"
  echo "could not get promtool: the Prometheus output test fails" >&2
  return 1
}

[ $m32 = 0 ] || m32_build
install_wanted
[ $promtool = 0 ] || promtool_get
# whether this kernel runs 32-bit programs shows once gcc -m32 builds one
if [ $m32 = 1 ]; then m32_run; install_wanted; fi
