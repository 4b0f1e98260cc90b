/*
 * duration: parse and print durations with units.
 *
 * Accepted: an integer followed by ms, s, m, h or d ("500ms", "10s",
 * "5m", "1h", "7d"); a bare "0".  Ranges are "A..B" with A <= B.
 * Values are milliseconds.
 */
#ifndef MANDRILL_DURATION_H
#define MANDRILL_DURATION_H

#include <stddef.h>
#include <stdint.h>

int duration_parse(const char *s, int64_t *out);
int duration_range_parse(const char *s, int64_t *lo, int64_t *hi);
/* Shortest exact form: 1500 -> "1500ms", 60000 -> "1m". */
const char *duration_fmt(int64_t ms, char *buf, size_t len);

#endif
