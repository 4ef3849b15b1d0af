/* startup.c - what runs before and around main on the bare Cortex-M4: the vector
   table, the reset handler (copies .data, zeroes .bss, paints the stack), SysTick as
   the millisecond clock, fault handlers, the console and exit through semihosting,
   and the two C library hooks newlib-nano needs. No heap: _sbrk refuses and counts. */
#include "board.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* From the linker script (mps2-an386.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);
void fw_uart_rx_isr(void); /* uart_transport.c */

/* ---------------------------------------------------------------------------------- */
/* Semihosting: bkpt 0xAB with the operation in r0 and its argument block in r1. */
#define SEMI_WRITE0 0x04
#define SEMI_EXIT 0x18
#define SEMI_EXIT_EXTENDED 0x20
#define SEMI_APP_EXIT 0x20026 /* ADP_Stopped_ApplicationExit */

static int fw_semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void fw_puts(const char *s) { (void)fw_semihost(SEMI_WRITE0, s); }

void fw_printf(const char *fmt, ...) {
    static char line[256]; /* static: the console's buffer is not counted as stack */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fw_puts(line);
}

void fw_exit(int code) {
    static uint32_t block[2];
    block[0] = SEMI_APP_EXIT;
    block[1] = (uint32_t)code;
    (void)fw_semihost(SEMI_EXIT_EXTENDED, block); /* the host's exit status = code */
    (void)fw_semihost(SEMI_EXIT, (const void *)(uintptr_t)SEMI_APP_EXIT); /* older hosts: 0/1 */
    for (;;) __asm__ volatile("wfi");
}

/* ---------------------------------------------------------------------------------- */
/* The millisecond clock: SysTick every 1 ms, a 64-bit count (never wraps). */
static volatile uint64_t fw_ms;

void SysTick_Handler(void) { fw_ms++; }

void fw_systick_init(void) {
    SYST_RVR = FW_SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* enable, interrupt, processor clock */
}

uint64_t fw_millis(void) {
    uint32_t primask;
    uint64_t v;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    v = fw_ms; /* two loads: not atomic without masking the tick */
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    return v;
}

void fw_delay_ms(uint32_t ms) {
    uint64_t until = fw_millis() + ms;
    while (fw_millis() < until) __asm__ volatile("wfi");
}

/* ---------------------------------------------------------------------------------- */
/* Stack high-water mark: the free stack is filled with a pattern; the lowest word
   that no longer holds it marks the deepest point reached since. */
#define FW_PAINT 0xC0FFEE55u

__attribute__((noinline)) void fw_stack_paint(void) {
    volatile uint32_t *p = __stack_bottom;
    uint32_t here = 0;
    volatile uint32_t *end = (volatile uint32_t *)((uintptr_t)&here - 64u); /* below this frame */
    while (p < end) *p++ = FW_PAINT;
}

size_t fw_stack_peak(void) {
    const volatile uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == FW_PAINT) p++;
    return (size_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

size_t fw_stack_left_at(uint32_t sp) { return (size_t)(sp - (uint32_t)(uintptr_t)__stack_bottom); }

size_t fw_stack_size(void) { return (size_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom); }

/* ---------------------------------------------------------------------------------- */
/* newlib-nano hooks. The program allocates nothing from a heap (rsq draws from its
   arena): a heap request is refused and counted, and main fails when any was made. */
static uint32_t fw_sbrk_count;
void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr) {
    (void)incr;
    fw_sbrk_count++;
    errno = ENOMEM;
    return (void *)-1;
}
uint32_t fw_sbrk_calls(void) { return fw_sbrk_count; }

/* ---------------------------------------------------------------------------------- */
void Reset_Handler(void) {
    uint32_t *src = __data_load, *dst = __data_start;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
    fw_stack_paint();
    fw_systick_init();
    fw_exit(main());
}

void Default_Handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    fw_printf("fw: unexpected exception %lu\n", (unsigned long)ipsr);
    fw_exit(91);
}

/* Faults: the stacked PC says where; then exit 90. */
void fw_fault_report(const uint32_t *frame);
void fw_fault_report(const uint32_t *frame) {
    fw_printf("fw: hard fault at pc 0x%08lx lr 0x%08lx, CFSR 0x%08lx HFSR 0x%08lx\n", (unsigned long)frame[6],
              (unsigned long)frame[5], (unsigned long)FW_REG(0xE000ED28u), (unsigned long)FW_REG(0xE000ED2Cu));
    fw_exit(90);
}

__attribute__((naked)) void HardFault_Handler(void) {
    __asm__ volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b fw_fault_report");
}

/* ---------------------------------------------------------------------------------- */
/* The vector table, placed at address 0 by the linker script: the initial stack
   pointer, then the 15 system exceptions and the board's 32 interrupts. */
typedef void (*fw_handler)(void);
struct fw_vector_table {
    uint32_t *stack_top;
    fw_handler handler[15 + 32];
};

__attribute__((section(".vectors"), used)) const struct fw_vector_table fw_vectors = {
    __stack_top,
    {
        Reset_Handler,     /* 1 reset */
        Default_Handler,   /* 2 NMI */
        HardFault_Handler, /* 3 hard fault */
        HardFault_Handler, /* 4 memory management */
        HardFault_Handler, /* 5 bus fault */
        HardFault_Handler, /* 6 usage fault */
        0, 0, 0, 0,        /* 7-10 reserved */
        Default_Handler,   /* 11 SVCall */
        Default_Handler,   /* 12 debug monitor */
        0,                 /* 13 reserved */
        Default_Handler,   /* 14 PendSV */
        SysTick_Handler,   /* 15 SysTick */
        fw_uart_rx_isr,    /* IRQ 0: UART0 receive */
        Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, /* IRQ 1..31 */
    },
};
