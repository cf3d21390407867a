#ifndef INVITES_IMPORT_INTERNAL_H
#define INVITES_IMPORT_INTERNAL_H

/* Shared by import.c (finding the source), import_lua.c (internal storage)
 * and import_sql.c (SQLite storage); nothing outside src/import*.c includes it. */

#include "import.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_NAME   "invite_api_keys"
#define FILE_MAX     (16 << 20) /* a store of keys is a few KiB */
#define NOT_A_RECORD "not a key record (no table)"

/* printf into err, truncating to err_size. */
void import_set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* created_at as Unix time, or 0 when it is not a plausible one. */
int64_t import_time_of(double t);

/* import_read() for each kind of source: the number of entries seen, or -1
 * with a reason in err. */
int import_read_internal(const char *path, import_key_cb cb, void *userdata, char *err,
                         size_t err_size);
int import_read_sql(const struct import_source *source, const char *host, import_key_cb cb,
                    void *userdata, char *err, size_t err_size);

#endif
