/*
 * Tests of HTTPS in the HTTP module: certificates made here with GnuTLS,
 * written to PEM files, loaded with http_api_tls_load(); an http_api on a
 * loopback port with TLS, driven by a loop in the test's thread while a
 * GnuTLS client thread makes real handshakes. Every wait has a deadline.
 */

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "unit.h"

#define DEADLINE_MS 5000
#define TLS_1_2_UP  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_1_1     "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0"

/* A certificate and its key as PEM files, and the certificate's DER. */
struct test_cert {
	char cert_path[64];
	char key_path[64];
	gnutls_datum_t der;
};

static void write_pem(char *path, const gnutls_datum_t *pem)
{
	strcpy(path, "/tmp/test_tls.XXXXXX");
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, pem->data, pem->size) == (ssize_t)pem->size);
	close(fd);
}

/* A self-signed EC certificate for localhost. */
static void make_cert(struct test_cert *tc, const char *cn, unsigned char serial)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t pem;
	time_t now = time(NULL);

	CU_ASSERT_FATAL(gnutls_x509_privkey_init(&key) == 0);
	CU_ASSERT_FATAL(
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_init(&crt) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_version(crt, 3) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_serial(crt, &serial, 1) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_activation_time(crt, now - 60) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_expiration_time(crt, now + 3600) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                                              (unsigned)strlen(cn)) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost",
	                                                     9, GNUTLS_FSAN_SET) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_set_key(crt, key) == 0);
	CU_ASSERT_FATAL(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) == 0);

	CU_ASSERT_FATAL(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) == 0);
	write_pem(tc->cert_path, &pem);
	gnutls_free(pem.data);
	CU_ASSERT_FATAL(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem) == 0);
	write_pem(tc->key_path, &pem);
	gnutls_free(pem.data);
	CU_ASSERT_FATAL(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &tc->der) == 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void drop_cert(struct test_cert *tc)
{
	unlink(tc->cert_path);
	unlink(tc->key_path);
	gnutls_free(tc->der.data);
}

/* --- the server side ----------------------------------------------------- */

static enum http_api_auth deny(void *userdata, const char *credential, size_t len,
                               struct http_api_key *key)
{
	(void)userdata, (void)credential, (void)len, (void)key;
	return HTTP_API_AUTH_DENIED;
}

static void no_invite(void *userdata, struct http_api_request *req, const struct http_api_key *key,
                      const struct http_api_invite_request *invite)
{
	(void)userdata, (void)key, (void)invite;
	http_api_request_fail(req, 500, "unexpected", 0);
}

static const struct http_api_handlers handlers = {deny, no_invite};

static struct http_api *start(struct http_api_tls *tls, const char **errstr)
{
	struct http_api_config cfg = {
	    .bind = "127.0.0.1", .port = 0, .path = "/invites_api", .tls = tls};
	return http_api_create(&cfg, &handlers, NULL, errstr);
}

/* --- the client: one handshake and one request in a thread ---------------- */

struct client {
	unsigned short port;
	const char *priorities;
	atomic_bool done;
	bool handshake_ok;
	char status_line[64];
	unsigned char peer[2048]; /* DER of the certificate the server sent */
	size_t peer_len;
	char protocol[16];
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	gnutls_certificate_credentials_t creds = NULL;
	gnutls_session_t session = NULL;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {DEADLINE_MS / 1000, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto out;
	if (gnutls_certificate_allocate_credentials(&creds) < 0 ||
	    gnutls_init(&session, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(session, c->priorities, NULL) < 0 ||
	    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds) < 0)
		goto out;
	gnutls_server_name_set(session, GNUTLS_NAME_DNS, "localhost", 9);
	gnutls_transport_set_int(session, fd);
	int rc;
	do {
		rc = gnutls_handshake(session);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		goto out;
	c->handshake_ok = true;
	snprintf(c->protocol, sizeof(c->protocol), "%s",
	         gnutls_protocol_get_name(gnutls_protocol_get_version(session)));
	unsigned n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
	if (peers != NULL && n > 0 && peers[0].size <= sizeof(c->peer)) {
		memcpy(c->peer, peers[0].data, peers[0].size);
		c->peer_len = peers[0].size;
	}
	const char *request = "GET /invites_api HTTP/1.1\r\nHost: localhost\r\n"
	                      "Connection: close\r\n\r\n";
	if (gnutls_record_send(session, request, strlen(request)) < 0)
		goto out;
	char buf[1024];
	ssize_t got = gnutls_record_recv(session, buf, sizeof(buf) - 1);
	if (got > 0) {
		buf[got] = '\0';
		snprintf(c->status_line, sizeof(c->status_line), "%.*s", (int)strcspn(buf, "\r\n"),
		         buf);
	}
	gnutls_bye(session, GNUTLS_SHUT_WR);
out:
	if (session != NULL)
		gnutls_deinit(session);
	if (creds != NULL)
		gnutls_certificate_free_credentials(creds);
	if (fd >= 0)
		close(fd);
	atomic_store(&c->done, true);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One client connection against api, served by this thread's loop. */
static void connect_once(struct http_api *api, struct client *c, const char *priorities)
{
	pthread_t thread;
	memset(c, 0, sizeof(*c));
	c->port = http_api_port(api);
	c->priorities = priorities;
	CU_ASSERT_FATAL(pthread_create(&thread, NULL, client_run, c) == 0);
	int64_t deadline = now_ms() + DEADLINE_MS;
	while (!atomic_load(&c->done) && now_ms() < deadline) {
		struct pollfd pfd = {.fd = http_api_fd(api), .events = POLLIN};
		int timeout = http_api_next_timeout(api);
		poll(&pfd, 1, timeout < 0 || timeout > 50 ? 50 : timeout);
		http_api_run(api);
	}
	CU_ASSERT(atomic_load(&c->done));
	pthread_join(thread, NULL);
	/* let MHD see the close and free the connection */
	for (int i = 0; i < 5; i++) {
		struct pollfd pfd = {.fd = http_api_fd(api), .events = POLLIN};
		poll(&pfd, 1, 10);
		http_api_run(api);
	}
}

static bool served(const struct client *c, const struct test_cert *tc)
{
	return c->peer_len == tc->der.size && memcmp(c->peer, tc->der.data, c->peer_len) == 0;
}

/* --- tests --------------------------------------------------------------- */

static void test_load_and_describe(void)
{
	struct test_cert a;
	char err[512] = "";
	make_cert(&a, "first.example", 1);
	struct http_api_tls *tls = http_api_tls_load(a.cert_path, a.key_path, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(tls);
	const char *text = http_api_tls_describe(tls);
	CU_ASSERT_EQUAL(strncmp(text, "subject CN=first.example, expires 2", 35), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, ", 1 certificate"));
	CU_ASSERT(http_api_tls_expires(tls) > time(NULL));
	http_api_tls_free(tls);
	http_api_tls_free(NULL);
	drop_cert(&a);
}

static void expect_error(const char *cert, const char *key, const char *part)
{
	char err[512] = "";
	struct http_api_tls *tls = http_api_tls_load(cert, key, err, sizeof(err));
	CU_ASSERT_PTR_NULL(tls);
	if (strstr(err, part) == NULL) {
		fprintf(stderr, "\n  got \"%s\", want \"...%s...\"\n", err, part);
		CU_FAIL("error message");
	}
	http_api_tls_free(tls);
}

static void test_load_errors(void)
{
	struct test_cert a, b;
	make_cert(&a, "a.example", 2);
	make_cert(&b, "b.example", 3);
	char msg[256];

	snprintf(msg, sizeof(msg), "tls_key %s does not match the certificate in %s", b.key_path,
	         a.cert_path);
	expect_error(a.cert_path, b.key_path, msg);
	snprintf(msg, sizeof(msg), "tls_certificate %s: no PEM certificate", a.key_path);
	expect_error(a.key_path, a.key_path, msg);
	snprintf(msg, sizeof(msg), "tls_key %s: no unencrypted PEM private key", a.cert_path);
	expect_error(a.cert_path, a.cert_path, msg);
	expect_error("/nonexistent/cert.pem", a.key_path,
	             "tls_certificate /nonexistent/cert.pem: cannot read: No such file");
	expect_error(a.cert_path, "/nonexistent/key.pem",
	             "tls_key /nonexistent/key.pem: cannot read: No such file");
	expect_error("/tmp", a.key_path, "tls_certificate /tmp is not a regular file");

	/* A key the service user cannot read (made 0600 by root): the fix named.
	 * Root reads anything, so the check runs in a child that is nobody. */
	if (geteuid() == 0) {
		CU_ASSERT_FATAL(chmod(a.cert_path, 0644) == 0 && chmod(a.key_path, 0600) == 0);
		pid_t pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			gid_t nogroup = 65534;
			char err[512] = "", want[512];
			if (setgroups(1, &nogroup) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
				_exit(2);
			struct http_api_tls *tls =
			    http_api_tls_load(a.cert_path, a.key_path, err, sizeof(err));
			snprintf(want, sizeof(want),
			         "tls_key %s: cannot read: Permission denied (the user the service "
			         "runs as must be able to read it, e.g. chown root:invites-api %s; "
			         "chmod 640 %s)",
			         a.key_path, a.key_path, a.key_path);
			_exit(tls == NULL && strcmp(err, want) == 0 ? 0 : 1);
		}
		int status;
		CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
		CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	/* A FIFO would block open() for a writer that never comes: the test
	 * dies by SIGALRM if it does. */
	char fifo[64];
	snprintf(fifo, sizeof(fifo), "/tmp/test_tls_fifo.%d", (int)getpid());
	CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
	alarm(10);
	snprintf(msg, sizeof(msg), "tls_certificate %s is not a regular file", fifo);
	expect_error(fifo, a.key_path, msg);
	snprintf(msg, sizeof(msg), "tls_key %s is not a regular file", fifo);
	expect_error(a.cert_path, fifo, msg);
	alarm(0);
	unlink(fifo);

	/* two certificates, the issuer first: out of order */
	char both[64];
	snprintf(both, sizeof(both), "/tmp/test_tls_both.XXXXXX");
	int fd = mkstemp(both);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cat %s %s > %s", b.cert_path, a.cert_path, both);
	CU_ASSERT_FATAL(system(cmd) == 0);
	expect_error(both, a.key_path, "out of order");
	unlink(both);
	drop_cert(&a);
	drop_cert(&b);
}

static void test_handshake_versions_and_reload(void)
{
	struct test_cert a, b, c;
	struct client cl;
	char err[512] = "";
	const char *errstr = NULL;
	make_cert(&a, "a.example", 4);
	make_cert(&b, "b.example", 5);
	make_cert(&c, "c.example", 6);

	struct http_api *api =
	    start(http_api_tls_load(a.cert_path, a.key_path, err, sizeof(err)), &errstr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(api);

	connect_once(api, &cl, TLS_1_2_UP);
	CU_ASSERT_TRUE(cl.handshake_ok);
	CU_ASSERT_TRUE(served(&cl, &a));
	CU_ASSERT_STRING_EQUAL(cl.status_line, "HTTP/1.1 401 Unauthorized");

	connect_once(api, &cl, "NORMAL:-VERS-ALL:+VERS-TLS1.2");
	CU_ASSERT_TRUE(cl.handshake_ok);
	CU_ASSERT_STRING_EQUAL(cl.protocol, "TLS1.2");

	connect_once(api, &cl, TLS_1_1);
	CU_ASSERT_FALSE(cl.handshake_ok);

	/* a new certificate for new connections */
	CU_ASSERT_EQUAL(
	    http_api_set_tls(api, http_api_tls_load(b.cert_path, b.key_path, err, sizeof(err))), 0);
	connect_once(api, &cl, TLS_1_2_UP);
	CU_ASSERT_TRUE(cl.handshake_ok);
	CU_ASSERT_TRUE(served(&cl, &b));
	CU_ASSERT_STRING_EQUAL(cl.status_line, "HTTP/1.1 401 Unauthorized");

	/* NULL (a load that failed) changes nothing */
	CU_ASSERT_EQUAL(http_api_set_tls(api, NULL), -1);
	connect_once(api, &cl, TLS_1_2_UP);
	CU_ASSERT_TRUE(served(&cl, &b));

	http_api_destroy(api);

	/* a plain HTTP listener has no certificate to replace */
	api = start(NULL, &errstr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(api);
	CU_ASSERT_EQUAL(
	    http_api_set_tls(api, http_api_tls_load(c.cert_path, c.key_path, err, sizeof(err))),
	    -1);
	http_api_destroy(api);

	/* a listener that cannot start frees the certificate it was given */
	struct http_api_config bad = {.bind = "not-an-address", .path = "/x"};
	bad.tls = http_api_tls_load(c.cert_path, c.key_path, err, sizeof(err));
	CU_ASSERT_PTR_NULL(http_api_create(&bad, &handlers, NULL, &errstr));

	drop_cert(&a);
	drop_cert(&b);
	drop_cert(&c);
}

static const struct unit_test tests[] = {
    {"load a certificate and describe it", test_load_and_describe},
    {"load errors name the file", test_load_errors},
    {"handshakes: TLS 1.2+ only, new certificate after set_tls",
     test_handshake_versions_and_reload},
    {NULL, NULL},
};

UNIT_MAIN("tls", tests)
