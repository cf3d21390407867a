#ifndef INVITES_TESTS_UNIT_H
#define INVITES_TESTS_UNIT_H

/*
 * Shared CUnit runner for the unit tests. Each test file defines
 *   static const struct unit_test tests[] = { {"name", fn}, ..., {NULL, NULL} };
 * and ends with UNIT_MAIN("suite name", tests).
 *
 * CUnit's CU_basic_run_tests() returns success even when assertions fail, so
 * the exit status comes from CU_get_number_of_failures().
 */

#include <CUnit/Basic.h>
#include <stdlib.h>

struct unit_test {
	const char *name;
	CU_TestFunc fn;
};

static inline int unit_run(const char *suite_name, const struct unit_test *tests)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return EXIT_FAILURE;
	CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
	if (suite == NULL)
		goto err;
	for (const struct unit_test *t = tests; t->name != NULL; t++) {
		if (CU_add_test(suite, t->name, t->fn) == NULL)
			goto err;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto err;
	unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
err:
	CU_cleanup_registry();
	return EXIT_FAILURE;
}

#define UNIT_MAIN(suite_name, tests)                                                               \
	int main(void)                                                                             \
	{                                                                                          \
		return unit_run(suite_name, tests);                                                \
	}

#endif
