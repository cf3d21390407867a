#include "import.h"
#include "import-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SQL_FILE "prosody.sqlite" /* mod_storage_sql's default database name */

static const char sqlite_magic[16] = "SQLite format 3";

void import_set_err(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

int64_t import_time_of(double t)
{
	return t >= 1 && t < 1e15 ? (int64_t)t : 0; /* also drops NaN and infinities */
}

/* ---- finding the source ---- */

int import_escape_host(const char *host, char *out, size_t out_size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9');
		if (n + (plain ? 1 : 3) >= out_size)
			return -1;
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= out_size)
		return -1;
	out[n] = '\0';
	return 0;
}

/* False with errno set when stat() fails (EACCES: a directory on the way is
 * not readable), false with errno 0 when it is not a regular file. */
static bool is_regular(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return false;
	errno = 0;
	return S_ISREG(st.st_mode);
}

/* An SQLite database starts with its magic string; anything else is taken
 * for a Lua table literal. -1 if the file cannot be read. */
static int detect_kind(const char *path, enum import_kind *kind, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		import_set_err(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char head[sizeof sqlite_magic];
	size_t n = fread(head, 1, sizeof head, f);
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		import_set_err(err, err_size, "cannot read %s", path);
		return -1;
	}
	*kind = n == sizeof head && memcmp(head, sqlite_magic, sizeof head) == 0 ? IMPORT_SQL
	                                                                         : IMPORT_INTERNAL;
	return 0;
}

static int set_path(struct import_source *source, const char *dir, const char *escaped_host)
{
	int n = escaped_host != NULL
	            ? snprintf(source->path, sizeof source->path, "%s/%s/" STORE_NAME ".dat", dir,
	                       escaped_host)
	            : snprintf(source->path, sizeof source->path, "%s/" SQL_FILE, dir);
	return n > 0 && (size_t)n < sizeof source->path ? 0 : -1;
}

/* In a data_path, internal storage has a file per host and store; with
 * mod_storage_sql and its default name, the database sits there instead. */
static int find_in_directory(const char *dir, const char *host, struct import_source *source,
                             char *err, size_t err_size)
{
	char escaped[3 * 1024];
	if (import_escape_host(host, escaped, sizeof escaped) < 0 ||
	    set_path(source, dir, escaped) < 0) {
		import_set_err(err, err_size, "host or path too long");
		return -1;
	}
	if (is_regular(source->path)) {
		source->kind = IMPORT_INTERNAL;
		return 0;
	}
	if (errno == EACCES)
		goto err_access;
	if (set_path(source, dir, NULL) == 0 && is_regular(source->path)) {
		source->kind = IMPORT_SQL;
		return 0;
	}
	if (errno == EACCES)
		goto err_access;
	import_set_err(err, err_size,
	               "%s has neither %s/" STORE_NAME ".dat nor " SQL_FILE
	               " (is it Prosody's data_path, and has %s any API keys?)",
	               dir, escaped, host);
	return -1;

err_access:
	import_set_err(
	    err, err_size,
	    "cannot read %s: %s (run import as root, or as a user who can read Prosody's data)",
	    dir, strerror(EACCES));
	return -1;
}

int import_find(const char *path, const char *host, struct import_source *source, char *err,
                size_t err_size)
{
	*source = (struct import_source){.time_limit_ms = IMPORT_TIME_LIMIT_MS};
	struct stat st;
	if (stat(path, &st) < 0) {
		import_set_err(err, err_size, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return find_in_directory(path, host, source, err, err_size);
	if (!S_ISREG(st.st_mode)) {
		import_set_err(err, err_size, "%s is neither a file nor a directory", path);
		return -1;
	}
	if (strlen(path) >= sizeof source->path) {
		import_set_err(err, err_size, "path too long");
		return -1;
	}
	strcpy(source->path, path);
	return detect_kind(path, &source->kind, err, err_size);
}

/* ---- dispatch ---- */

int import_read(const struct import_source *source, const char *host, import_key_cb cb,
                void *userdata, char *err, size_t err_size)
{
	if (source->kind == IMPORT_SQL)
		return import_read_sql(source, host, cb, userdata, err, err_size);
	return import_read_internal(source->path, cb, userdata, err, err_size);
}
