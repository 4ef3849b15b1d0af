/* board.h - the board under the firmware example: an Arm MPS2 FPGA board with the
   AN386 image (a Cortex-M4), as qemu-system-arm emulates it (-M mps2-an386).
   Registers used: SysTick (the 1 ms clock), the CMSDK APB UART0 (the link to Redis),
   the NVIC (UART0's receive interrupt). Console output and the exit code go through
   semihosting (the debugger's channel; qemu with -semihosting-config enable=on). */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define FW_REG(addr) (*(volatile uint32_t *)(addr))

/* The board's clock: 25 MHz (SysTick counts it with CLKSOURCE = processor clock). */
#define FW_SYSCLK_HZ 25000000u

/* SysTick, in the Cortex-M4's System Control Space. */
#define SYST_CSR FW_REG(0xE000E010u)
#define SYST_RVR FW_REG(0xE000E014u)
#define SYST_CVR FW_REG(0xE000E018u)

/* NVIC: set-enable, clear-enable and clear-pending, one bit per interrupt. */
#define NVIC_ISER0 FW_REG(0xE000E100u)
#define NVIC_ICER0 FW_REG(0xE000E180u)
#define NVIC_ICPR0 FW_REG(0xE000E280u)

/* CMSDK APB UART0: a one-byte receive register, no FIFO, no flow control. */
#define UART0_BASE 0x40004000u
#define UART0_DATA FW_REG(UART0_BASE + 0x00u)
#define UART0_STATE FW_REG(UART0_BASE + 0x04u)   /* TXFULL, RXFULL, TX/RX overrun (w1c) */
#define UART0_CTRL FW_REG(UART0_BASE + 0x08u)
#define UART0_INTSTATUS FW_REG(UART0_BASE + 0x0Cu) /* write 1s to clear */
#define UART0_BAUDDIV FW_REG(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u
#define UART_STATE_RXOVR 0x8u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u
#define UART_CTRL_RXINT 0x8u
#define UART_CTRL_RXOVRINT 0x20u
#define UART_INT_RX 0x2u
#define UART_INT_RXOVR 0x8u
#define UART0_RX_IRQ 0 /* the board's interrupt 0: UART0 receive */

/* startup.c */
void fw_puts(const char *s);                   /* one line (or any text) to the console */
void fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fw_exit(int code) __attribute__((noreturn)); /* the program's result, to the host */
uint64_t fw_millis(void);                      /* ms since reset (SysTick) */
void fw_delay_ms(uint32_t ms);                 /* sleeps (WFI) for ms */
void fw_stack_paint(void);                     /* fills the unused stack with a pattern */
size_t fw_stack_peak(void);                    /* bytes of stack ever used since the paint */
size_t fw_stack_size(void);
size_t fw_stack_left_at(uint32_t sp);             /* free stack below sp */
uint32_t fw_sbrk_calls(void);                  /* heap requests (refused): must stay 0 */
void fw_systick_init(void);

/* rsq_impl.c: calls of rsq's default allocator (refused; the arena serves all) */
unsigned long fw_default_alloc_calls(void);

/* uart_transport.c */
struct rsq_transport;
typedef struct fw_uart_stats {
    unsigned long opens, closes, syncs_failed; /* links opened, closed, sync timeouts  */
    unsigned long sync_skipped;                /* stale bytes the syncs discarded      */
    unsigned long bytes_out, bytes_in;         /* over the wire, syncs included        */
    unsigned long recv_calls, recv_empty;      /* recv calls; those that found nothing */
    unsigned long recv_short;                  /* returned fewer bytes than asked      */
    unsigned long waits, wait_timeouts;        /* wait calls; those that timed out     */
    unsigned long rx_stalls;                   /* ring full: receive paused            */
    unsigned long overruns;                    /* bytes lost (reported as RSQ_ERR_IO)  */
    unsigned ring_peak, ring_size;             /* receive ring: highest fill, size     */
} fw_uart_stats;
void fw_uart_init(void);
const struct rsq_transport *fw_uart_transport(void);
void fw_uart_get_stats(fw_uart_stats *out);

#endif
