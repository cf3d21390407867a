#ifndef INVITES_KEYS_INTERNAL_H
#define INVITES_KEYS_INTERNAL_H

/* Shared inside keys/ only. Each check returns NULL when the value is
 * acceptable, else a static one-line reason. */

#include "keys.h"

#define IMPORT_SECRET_MIN 16 /* shortest secret accepted from elsewhere (96 bits in base64) */

/* 1..KEYS_HOST_MAX bytes of UTF-8, no whitespace, control characters or '/'. */
const char *keys_check_host(const char *host);

/* 1..KEYS_NAME_MAX bytes of UTF-8, no control characters, nothing XML cannot carry. */
const char *keys_check_name(const char *name);

/* Expiry not negative; max_invites and period_s both set or both zero. */
const char *keys_check_limits(const struct api_key_limits *limits);

/* An imported ID and secret that keys_parse() will accept once joined. */
const char *keys_check_credential(const char *id, const char *secret);

#endif
