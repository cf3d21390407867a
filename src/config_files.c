/*
 * The files that hold secrets (the config file, secret_file, the TLS key):
 * who may read them, and reading the secret itself (config.h).
 */

#include "config.h"
#include "file.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static bool has_control_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* ---- files that hold secrets ---- */

#define SECRET_FILE_MAX 1024

static bool in_our_groups(gid_t gid)
{
	if (gid == getegid())
		return true;
	gid_t groups[NGROUPS_MAX];
	int n = getgroups(NGROUPS_MAX, groups);
	for (int i = 0; i < n; i++) {
		if (groups[i] == gid)
			return true;
	}
	return false;
}

/*
 * The mode bits do not tell everything: a POSIX ACL (system.posix_acl_access,
 * shown as a '+' after the mode) can let named users and groups read a 0600
 * file. An entry for this service's own user or one of its groups is what a
 * group-readable mode would allow too; any other named entry that grants
 * something through the mask is refused. Layout (Linux posix_acl_xattr): a
 * le32 version 2, then entries of le16 tag, le16 perm, le32 id.
 */
enum { ACL_USER_ENTRY = 0x02, ACL_GROUP_ENTRY = 0x08, ACL_MASK_ENTRY = 0x10 };

static unsigned le16_at(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t le32_at(const uint8_t *p)
{
	return le16_at(p) | (uint32_t)le16_at(p + 2) << 16;
}

static bool acl_grants_others(const char *path)
{
	uint8_t acl[4 + 8 * 64];
	ssize_t len = getxattr(path, "system.posix_acl_access", acl, sizeof(acl));
	if (len < 0)
		return errno == ERANGE; /* more than 64 entries: not just ours */
	unsigned mask = 07;
	for (size_t at = 4; at + 8 <= (size_t)len; at += 8)
		if (le16_at(acl + at) == ACL_MASK_ENTRY)
			mask = le16_at(acl + at + 2);
	for (size_t at = 4; at + 8 <= (size_t)len; at += 8) {
		unsigned tag = le16_at(acl + at), id = le32_at(acl + at + 4);
		if ((le16_at(acl + at + 2) & mask) == 0)
			continue;
		if (tag == ACL_USER_ENTRY && id != geteuid())
			return true;
		if (tag == ACL_GROUP_ENTRY && !in_our_groups(id))
			return true;
	}
	return false;
}

int config_check_private(const char *path, const char *what, char *err, size_t err_size)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(err, err_size, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s %s is not a regular file", what, path);
		return -1;
	}
	unsigned mode = (unsigned)st.st_mode & 07777;
	if ((mode & (S_IRWXO | S_IWGRP)) != 0) {
		snprintf(err, err_size,
		         "%s %s can be %s by %s (mode %04o): it holds a secret; fix with: chmod "
		         "o-rwx,g-w %s",
		         what, path, (mode & (S_IWOTH | S_IWGRP)) != 0 ? "changed" : "read",
		         (mode & S_IRWXO) != 0 ? "every user" : "its group", mode, path);
		return -1;
	}
	if ((mode & S_IRGRP) != 0 && !in_our_groups(st.st_gid)) {
		const struct group *gr = getgrgid(st.st_gid);
		/* Root is not the service: the group may well be the service's, and
		 * chmod 600 would lock the service out. */
		if (geteuid() == 0)
			snprintf(err, err_size,
			         "%s %s can be read by group %s (mode %04o), which root is not in: "
			         "run this as the service user, e.g. runuser -u invites-api -- "
			         "invites-api ... (if that group is not the service's own, it "
			         "holds a secret: chgrp it to the service's group)",
			         what, path, gr != NULL ? gr->gr_name : "?", mode);
		else
			snprintf(
			    err, err_size,
			    "%s %s can be read by group %s (mode %04o), which this service is "
			    "not in: it holds a secret; fix with: chmod 600 %s (or chgrp it to "
			    "the service's own group)",
			    what, path, gr != NULL ? gr->gr_name : "?", mode, path);
		return -1;
	}
	if (acl_grants_others(path)) {
		snprintf(err, err_size,
		         "%s %s has an access control list (ACL) granting access to others: it "
		         "holds a secret; fix with: setfacl -b %s",
		         what, path, path);
		return -1;
	}
	return 0;
}

int config_check_files(const struct config *cfg, const char *cfg_path, char *err, size_t err_size)
{
	if (config_check_private(cfg_path, "config file", err, err_size) < 0)
		return -1;
	if (cfg->component.secret_file != NULL &&
	    config_check_private(cfg->component.secret_file, "[component] secret_file", err,
	                         err_size) < 0)
		return -1;
	if (cfg->http.tls_key != NULL &&
	    config_check_private(cfg->http.tls_key, "[http] tls_key", err, err_size) < 0)
		return -1;
	return 0;
}

/* The file's first line: one trailing newline (LF or CRLF) is not part of it. */
static int read_secret_file(const char *path, char **secret, char *err, size_t err_size)
{
	char buf[SECRET_FILE_MAX + 2];
	size_t len = 0;
	int fd = open_regular(path);
	if (fd == -2) {
		snprintf(err, err_size, "[component] secret_file %s is not a regular file", path);
		return -1;
	}
	if (fd < 0) {
		snprintf(err, err_size, "[component] secret_file %s: %s", path, strerror(errno));
		return -1;
	}
	for (ssize_t n; len < sizeof(buf) - 1; len += (size_t)n) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0) {
			snprintf(err, err_size, "[component] secret_file %s: %s", path,
			         strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		if (n == 0)
			break;
	}
	close(fd);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';

	const char *problem = NULL;
	if (len > SECRET_FILE_MAX)
		problem = "is longer than 1024 bytes";
	else if (len == 0)
		problem = "is empty";
	else if (memchr(buf, '\0', len) != NULL || has_control_chars(buf))
		problem = "holds more than one line or control characters";
	if (problem != NULL) {
		/* Never the content: it may be the secret. */
		snprintf(err, err_size,
		         "[component] secret_file %s %s (it must hold the secret "
		         "on one line)",
		         path, problem);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	*secret = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (*secret == NULL) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	return 0;
}

int config_secret(const struct config *cfg, char **secret, char *err, size_t err_size)
{
	*secret = NULL;
	if (cfg->component.secret_file != NULL)
		return read_secret_file(cfg->component.secret_file, secret, err, err_size);
	*secret = strdup(cfg->component.secret);
	if (*secret == NULL) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	return 0;
}

void config_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}
