/*
 * The HTTPS certificate: a PEM chain and its PEM key, read and checked here,
 * then handed to each new TLS session by GnuTLS's certificate callback.
 *
 * Every session gets its own copies (GNUTLS_CERT_RETR_DEINIT_ALL: GnuTLS
 * frees them with the session). So a certificate can be replaced at any
 * moment, by a SIGHUP after a renewal, without tracking which open
 * connection still uses the old one.
 */

#include "http-internal.h"

#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PEM_FILE_MAX (1024 * 1024) /* a chain of a few certificates is a few KiB */
#define KEY_ID_MAX   64

struct http_api_tls {
	gnutls_x509_crt_t *chain; /* leaf first */
	unsigned chain_len;
	gnutls_x509_privkey_t key;
	time_t expires; /* of the leaf */
	char description[320];
};

/* The whole file into a NUL-terminated buffer (gnutls_free it). */
static int read_pem(const char *path, const char *what, gnutls_datum_t *out, char *err,
                    size_t err_size)
{
	int fd = open_regular(path); /* a FIFO would block the daemon */
	struct stat st;

	out->data = NULL;
	out->size = 0;
	if (fd == -2) {
		snprintf(err, err_size, "%s %s is not a regular file", what, path);
		return -1;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (errno == EACCES)
			snprintf(
			    err, err_size,
			    "%s %s: cannot read: %s (the user the service runs as must be able "
			    "to read it, e.g. chown root:invites-api %s; chmod 640 %s)",
			    what, path, strerror(EACCES), path, path);
		else
			snprintf(err, err_size, "%s %s: cannot read: %s", what, path,
			         strerror(errno));
		goto err;
	}
	if (st.st_size > PEM_FILE_MAX) {
		snprintf(err, err_size, "%s %s: not a PEM file (larger than 1 MiB)", what, path);
		goto err;
	}
	out->data = gnutls_malloc((size_t)st.st_size + 1);
	if (out->data == NULL) {
		snprintf(err, err_size, "%s %s: out of memory", what, path);
		goto err;
	}
	size_t len = 0;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, out->data + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, err_size, "%s %s: cannot read: %s", what, path,
			         n < 0 ? strerror(errno) : "file shrank while reading");
			goto err;
		}
		len += (size_t)n;
	}
	out->data[len] = '\0';
	out->size = (unsigned)len;
	close(fd);
	return 0;

err:
	if (fd >= 0)
		close(fd);
	if (out->data != NULL) {
		gnutls_memset(out->data, 0, (size_t)st.st_size);
		gnutls_free(out->data);
		out->data = NULL;
	}
	return -1;
}

static void wipe_pem(gnutls_datum_t *pem)
{
	if (pem->data == NULL)
		return;
	gnutls_memset(pem->data, 0, pem->size);
	gnutls_free(pem->data);
	pem->data = NULL;
}

static int load_chain(struct http_api_tls *tls, const char *path, char *err, size_t err_size)
{
	gnutls_datum_t pem;
	if (read_pem(path, "tls_certificate", &pem, err, err_size) < 0)
		return -1;
	int rc =
	    gnutls_x509_crt_list_import2(&tls->chain, &tls->chain_len, &pem, GNUTLS_X509_FMT_PEM,
	                                 GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	wipe_pem(&pem);
	if (rc == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
		snprintf(err, err_size,
		         "tls_certificate %s: the certificates are out of order: this server's "
		         "certificate must come first, then each issuer",
		         path);
		return -1;
	}
	if (rc < 0 || tls->chain_len == 0) {
		snprintf(err, err_size, "tls_certificate %s: no PEM certificate in it (%s)", path,
		         rc < 0 ? gnutls_strerror(rc) : "empty");
		return -1;
	}
	return 0;
}

static int load_key(struct http_api_tls *tls, const char *path, char *err, size_t err_size)
{
	gnutls_datum_t pem;
	if (read_pem(path, "tls_key", &pem, err, err_size) < 0)
		return -1;
	int rc = gnutls_x509_privkey_init(&tls->key);
	if (rc == 0)
		rc = gnutls_x509_privkey_import2(tls->key, &pem, GNUTLS_X509_FMT_PEM, NULL,
		                                 GNUTLS_PKCS_PLAIN);
	wipe_pem(&pem);
	if (rc < 0) {
		snprintf(err, err_size, "tls_key %s: no unencrypted PEM private key in it (%s)",
		         path, gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* The key must be the one of the first certificate: compare public key IDs. */
static int check_pair(const struct http_api_tls *tls, const char *cert_path, const char *key_path,
                      char *err, size_t err_size)
{
	unsigned char crt_id[KEY_ID_MAX], key_id[KEY_ID_MAX];
	size_t crt_len = sizeof(crt_id), key_len = sizeof(key_id);

	if (gnutls_x509_crt_get_key_id(tls->chain[0], GNUTLS_KEYID_USE_SHA256, crt_id, &crt_len) <
	        0 ||
	    gnutls_x509_privkey_get_key_id(tls->key, GNUTLS_KEYID_USE_SHA256, key_id, &key_len) <
	        0 ||
	    crt_len != key_len || memcmp(crt_id, key_id, crt_len) != 0) {
		snprintf(err, err_size,
		         "tls_key %s does not match the certificate in %s (the first certificate "
		         "must be the one made for this key)",
		         key_path, cert_path);
		return -1;
	}
	return 0;
}

static void describe(struct http_api_tls *tls)
{
	gnutls_datum_t dn = {NULL, 0};
	char expires[32] = "?";
	struct tm tm;

	tls->expires = gnutls_x509_crt_get_expiration_time(tls->chain[0]);
	if (tls->expires != (time_t)-1 && gmtime_r(&tls->expires, &tm) != NULL)
		strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (gnutls_x509_crt_get_dn3(tls->chain[0], &dn, 0) < 0)
		dn.data = NULL;
	char subject[200];
	log_escape(subject, sizeof(subject), dn.data != NULL ? (const char *)dn.data : "?", false);
	gnutls_free(dn.data);
	snprintf(tls->description, sizeof(tls->description),
	         "subject %s, expires %s, %u certificate%s", subject, expires, tls->chain_len,
	         tls->chain_len == 1 ? "" : "s");
}

struct http_api_tls *http_api_tls_load(const char *cert_path, const char *key_path, char *err,
                                       size_t err_size)
{
	struct http_api_tls *tls = calloc(1, sizeof(*tls));
	if (tls == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	if (load_chain(tls, cert_path, err, err_size) < 0 ||
	    load_key(tls, key_path, err, err_size) < 0 ||
	    check_pair(tls, cert_path, key_path, err, err_size) < 0) {
		http_api_tls_free(tls);
		return NULL;
	}
	describe(tls);
	return tls;
}

void http_api_tls_free(struct http_api_tls *tls)
{
	if (tls == NULL)
		return;
	for (unsigned i = 0; i < tls->chain_len; i++)
		gnutls_x509_crt_deinit(tls->chain[i]);
	gnutls_free(tls->chain);
	if (tls->key != NULL)
		gnutls_x509_privkey_deinit(tls->key);
	free(tls);
}

const char *http_api_tls_describe(const struct http_api_tls *tls)
{
	return tls->description;
}

time_t http_api_tls_expires(const struct http_api_tls *tls)
{
	return tls->expires;
}

/* Fresh copies of the chain and the key for one session; GnuTLS frees them. */
int tls_session_credentials(const struct http_api_tls *tls, gnutls_pcert_st **certs,
                            unsigned *n_certs, gnutls_privkey_t *privkey)
{
	gnutls_pcert_st *list = gnutls_calloc(tls->chain_len, sizeof(*list));
	gnutls_x509_privkey_t key_copy = NULL;
	gnutls_privkey_t key = NULL;
	unsigned done = 0;

	if (list == NULL)
		return -1;
	for (; done < tls->chain_len; done++) {
		if (gnutls_pcert_import_x509(&list[done], tls->chain[done], 0) < 0)
			goto err;
	}
	if (gnutls_x509_privkey_init(&key_copy) < 0 ||
	    gnutls_x509_privkey_cpy(key_copy, tls->key) < 0 || gnutls_privkey_init(&key) < 0 ||
	    gnutls_privkey_import_x509(key, key_copy, GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE) < 0)
		goto err;
	*certs = list;
	*n_certs = tls->chain_len;
	*privkey = key;
	return 0;

err:
	if (key != NULL)
		gnutls_privkey_deinit(key);
	if (key_copy != NULL)
		gnutls_x509_privkey_deinit(key_copy);
	while (done > 0)
		gnutls_pcert_deinit(&list[--done]);
	gnutls_free(list);
	return -1;
}
