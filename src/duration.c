#include "duration.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
	char suffix;
	int64_t seconds;
};

/* Largest first, for duration_format(). */
static const struct unit units[] = {
    {'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1},
};

static const struct unit *find_unit(char suffix)
{
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (units[i].suffix == suffix)
			return &units[i];
	}
	return NULL;
}

static const char junk[] = "a duration is a number with an optional unit s, m, h, d or w"
                           " (e.g. 30d)";

/* Digits only, no sign, no spaces: strtoll would accept " +12" and "-5". */
int duration_parse(const char *text, int64_t *seconds, const char **errstr)
{
	const char *p = text != NULL ? text : "";
	int64_t value = 0;
	bool too_long = false;

	if (*p == '-') {
		*errstr = "a duration cannot be negative";
		return -1;
	}
	if (*p < '0' || *p > '9') {
		*errstr = junk;
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > DURATION_MAX)
			too_long = true; /* keep scanning: junk after it is still junk */
		else
			value = value * 10 + (*p - '0');
	}
	const struct unit *unit = find_unit(*p == '\0' ? 's' : *p);
	if (unit == NULL || (*p != '\0' && p[1] != '\0')) {
		*errstr = junk;
		return -1;
	}
	if (value == 0 && !too_long) {
		*errstr = "a duration must be longer than zero";
		return -1;
	}
	if (too_long || value > DURATION_MAX / unit->seconds) {
		*errstr = "a duration can be at most 100 years";
		return -1;
	}
	*seconds = value * unit->seconds;
	return 0;
}

char *duration_format(int64_t seconds, char *buf, size_t size)
{
	const struct unit *unit = find_unit('s');
	for (size_t i = 0; i < sizeof units / sizeof units[0] && seconds > 0; i++) {
		if (seconds % units[i].seconds == 0) {
			unit = &units[i];
			break;
		}
	}
	snprintf(buf, size, "%lld%c", (long long)(seconds / unit->seconds), unit->suffix);
	return buf;
}
