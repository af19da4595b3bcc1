/*
 * A minimal test harness for the unit tests: checks report and go on (never
 * abort on the first failure), and the program ends with the plain line
 * "N passed, N failed" and exit status 1 when anything failed.
 *
 *   static void test_x(void) { CHECK(a == b); CHECK_STR(s, "x"); CHECK_INT(rc, 0); }
 *   int main(void) { RUN(test_x); return check_done(); }
 */
#ifndef RELAY_TEST_CHECK_H
#define RELAY_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) check_passed++; \
	else { check_failed++; \
	       fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_INT(got, want) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (g_ == w_) check_passed++; \
	else { check_failed++; \
	       fprintf(stderr, "%s:%d: %s is %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); } \
} while (0)

#define CHECK_STR(got, want) do { \
	const char *g_ = (got), *w_ = (want); \
	if (g_ && w_ && strcmp(g_, w_) == 0) check_passed++; \
	else { check_failed++; \
	       fprintf(stderr, "%s:%d: %s is \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got, \
	               g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } \
} while (0)

#define RUN(fn) do { fprintf(stderr, "-- %s\n", #fn); fn(); } while (0)

static inline int
check_done(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
