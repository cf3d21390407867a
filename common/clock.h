#ifndef INVITES_COMMON_CLOCK_H
#define INVITES_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: for deadlines and intervals. */
int64_t clock_monotonic_ms(void);

#endif
