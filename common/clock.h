/*
 * clock: the one source of time for mandrill.
 *
 * clock_now() is monotonic milliseconds for deadlines and intervals;
 * clock_wall() is wall-clock milliseconds since the epoch, for logs and
 * the database.  Tests drive both with clock_set_fake() so that lease and
 * backoff logic can be checked without sleeping.
 */
#ifndef MANDRILL_CLOCK_H
#define MANDRILL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_now(void);
/* The same clock in microseconds, for latency measurements. */
int64_t clock_now_us(void);
int64_t clock_wall(void);
void clock_set_fake(int64_t now_ms);	/* < 0 returns to the real clock */
/* Monotonic ms that ignores the fake clock: for timing real waits. */
int64_t clock_real(void);
void clock_advance(int64_t ms);
/* Tests: step the wall clock alone, as an operator or NTP would. */
void clock_step_wall(int64_t ms);

/* "2026-11-28T10:03:56.842Z" into buf (at least 25 bytes). */
void clock_iso(int64_t wall_ms, char *buf, size_t len);
/*
 * This boot's id from the kernel, which names the epoch of clock_now()'s
 * monotonic clock; "unknown" if it cannot tell.
 */
void clock_boot_id(char *buf, size_t len);

#endif
