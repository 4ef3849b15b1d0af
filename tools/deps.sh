#!/usr/bin/env bash
# deps.sh - installs what a make target needs from Debian's packages, when missing.
# Usage: tools/deps.sh test|demo|bench|fuzz|cross|valgrind
# Required packages must install; optional ones may fail (their checks then skip).
set -euo pipefail
want=()
nice=()
have() { command -v "$1" >/dev/null 2>&1; }
case "${1:-test}" in
  demo) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools); have cc || want+=(gcc) ;;
  test) have redis-server || want+=(redis-server); have redis-cli || want+=(redis-tools)
        have gcc || want+=(gcc); have g++ || want+=(g++); have clang || want+=(clang)
        have openssl || want+=(openssl); [ -f /usr/include/openssl/ssl.h ] || want+=(libssl-dev)
        have arm-none-eabi-gcc || want+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
        have riscv64-unknown-elf-gcc || nice+=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf) ;;
  bench) have redis-server || want+=(redis-server); have redis-benchmark || want+=(redis-tools)
         [ -f /usr/include/hiredis/hiredis.h ] || nice+=(libhiredis-dev) ;;
  fuzz) have clang || want+=(clang); ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || want+=(libclang-rt-14-dev) ;;
  cross) have arm-none-eabi-gcc || want+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
         have riscv64-unknown-elf-gcc || nice+=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf) ;;
  valgrind) have valgrind || want+=(valgrind) ;;
esac
[ ${#want[@]} -eq 0 ] && [ ${#nice[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if have sudo; then SUDO="sudo"; else echo "need root to install: ${want[*]} ${nice[*]}" >&2; [ ${#want[@]} -eq 0 ]; exit $?; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
if [ ${#want[@]} -gt 0 ]; then
  echo "installing: ${want[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
if [ ${#nice[@]} -gt 0 ]; then
  echo "installing (optional): ${nice[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${nice[@]}" >/dev/null ||
    echo "could not install ${nice[*]}: the checks that need them are skipped" >&2
fi
