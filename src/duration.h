#ifndef INVITES_DURATION_H
#define INVITES_DURATION_H

/*
 * Durations on the command line: a positive whole number with an optional
 * unit, "90s", "45m", "12h", "30d", "2w", or plain seconds "3600".
 */

#include <stddef.h>
#include <stdint.h>

#define DURATION_MAX                                                                               \
	INT64_C(3155760000) /* 100 years of 365.25 days, in seconds; fits an unsigned */

/* Parse text into *seconds (1..DURATION_MAX). Returns 0, or -1 with *errstr
 * set to a static reason (zero, negative, junk, no number, too long). */
int duration_parse(const char *text, int64_t *seconds, const char **errstr);

/* Write seconds (> 0) in the largest unit that divides it exactly ("1d",
 * "90s", "2w") into buf; returns buf. size 24 is always enough. */
char *duration_format(int64_t seconds, char *buf, size_t size);

#endif
