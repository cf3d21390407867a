#include "src/duration.h"
#include "unit.h"

#include <stdbool.h>
#include <string.h>

struct duration_case {
	const char *text;
	int64_t seconds; /* 0: must be refused */
};

static void test_parse(void)
{
	static const struct duration_case cases[] = {
	    {"90s", 90},
	    {"45m", 45 * 60},
	    {"12h", 12 * 3600},
	    {"30d", 30 * 86400},
	    {"2w", 14 * 86400},
	    {"3600", 3600},
	    {"1", 1},
	    {"007s", 7},
	    {"5217w", 5217LL * 7 * 86400}, /* just under 100 years */
	    {"3155760000", 3155760000LL},  /* exactly DURATION_MAX */
	    {"3155760000s", 3155760000LL},
	    {"36525d", 36525LL * 86400}, /* 100 years of 365.25 days */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t seconds = -1;
		const char *err = NULL;
		int rc = duration_parse(cases[i].text, &seconds, &err);
		CU_assertImplementation(rc == 0 && seconds == cases[i].seconds, __LINE__,
		                        cases[i].text, __FILE__, "", CU_FALSE);
	}
}

static void test_refused(void)
{
	static const struct {
		const char *text;
		const char *reason; /* a word the reason must contain */
	} cases[] = {
	    {"0", "zero"},
	    {"0s", "zero"},
	    {"000d", "zero"},
	    {"-1", "negative"},
	    {"-5d", "negative"},
	    {"+5", "unit"},
	    {"", "unit"},
	    {NULL, "unit"},
	    {"d", "unit"},
	    {"5x", "unit"},
	    {"5D", "unit"},
	    {"5 d", "unit"},
	    {" 5", "unit"},
	    {"5 ", "unit"},
	    {"5ss", "unit"},
	    {"1h30m", "unit"},
	    {"1.5h", "unit"},
	    {"0x10", "unit"},
	    {"3155760001", "100 years"},
	    {"5218w", "100 years"},
	    {"36526d", "100 years"},
	    {"99999999999999999999999999999", "100 years"},
	    {"99999999999999999999999999999d", "100 years"},
	    {"99999999999999999999999999999q", "unit"}, /* junk wins over size */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t seconds = 12345;
		const char *err = NULL;
		int rc = duration_parse(cases[i].text, &seconds, &err);
		const char *what = cases[i].text != NULL ? cases[i].text : "NULL";
		CU_assertImplementation(rc == -1 && seconds == 12345, __LINE__, what, __FILE__, "",
		                        CU_FALSE);
		CU_assertImplementation(err != NULL && strstr(err, cases[i].reason) != NULL,
		                        __LINE__, what, __FILE__, "", CU_FALSE);
	}
}

static void test_format(void)
{
	static const struct duration_case cases[] = {
	    {"1s", 1},
	    {"59s", 59},
	    {"1m", 60},
	    {"90s", 90},
	    {"1h", 3600},
	    {"61m", 3660},
	    {"1d", 86400},
	    {"25h", 90000},
	    {"1w", 604800},
	    {"8d", 691200},
	    {"2w", 1209600},
	    {"36525d", 3155760000LL},
	    {"3155759999s", 3155759999LL},
	};
	char buf[24];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		duration_format(cases[i].seconds, buf, sizeof buf);
		CU_assertImplementation(strcmp(buf, cases[i].text) == 0, __LINE__, cases[i].text,
		                        __FILE__, "", CU_FALSE);
		/* What is printed parses back to the same duration. */
		int64_t back = 0;
		const char *err = NULL;
		CU_ASSERT(duration_parse(buf, &back, &err) == 0 && back == cases[i].seconds);
	}
	CU_ASSERT_STRING_EQUAL(duration_format(0, buf, sizeof buf), "0s");
}

static const struct unit_test tests[] = {
    {"durations with and without units", test_parse},
    {"zero, negative, junk and overflow are refused", test_refused},
    {"format picks the largest exact unit", test_format},
    {NULL, NULL},
};

UNIT_MAIN("duration", tests)
