/*
 * floor: the resident memory of the libraries invites-api is built on, with
 * none of its own code. It links the same libraries as the daemon, starts
 * them the way the daemon does (libstrophe context and connection, an epoll
 * libmicrohttpd listener on loopback, libsodium, an open SQLite database),
 * prints "ready" and sleeps until killed. bench.py reads its RSS next to the
 * daemon's: what the daemon adds is the difference.
 *
 * With a PORT, it is instead the fastest HTTP server these libraries make:
 * one libmicrohttpd thread (epoll) answering every request on 127.0.0.1:PORT
 * with a fixed 401, no key lookup, no logging. Its rate under the same wrk is
 * what the machine and the load tool allow; the daemon's wrong-key rate is
 * compared with it.
 *
 *   floor DATABASE [PORT]
 */

#include <microhttpd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strophe.h>
#include <unistd.h>

static const char refusal[] = "unknown API key or wrong secret\n";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
	struct MHD_Response *response = cls;
	static int first_call;
	(void)url, (void)method, (void)version, (void)upload_data;
	if (*req_cls == NULL) { /* headers only: answering now would close the connection */
		*req_cls = &first_call;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED, response);
}

int main(int argc, char **argv)
{
	sqlite3 *db = NULL;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: floor DATABASE [PORT]\n");
		return 2;
	}
	if (sodium_init() < 0 || sqlite3_open(argv[1], &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS t (x); SELECT count(*) FROM t;", NULL,
	                 NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "floor: cannot initialise libsodium or SQLite\n");
		return 1;
	}
	/* No xmpp_initialize(), as in the daemon (component/component.c,
	 * library_init()): it would only initialise OpenSSL. */
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_conn_t *conn = ctx ? xmpp_conn_new(ctx) : NULL;
	struct MHD_Response *response = MHD_create_response_from_buffer(
	    sizeof(refusal) - 1, (void *)refusal, MHD_RESPMEM_PERSISTENT);
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	unsigned short port = 0;
	if (argc == 3) {
		flags |= MHD_USE_INTERNAL_POLLING_THREAD;
		port = (unsigned short)atoi(argv[2]);
	}
	struct MHD_Daemon *http = response ? MHD_start_daemon(flags, port, NULL, NULL, on_access,
	                                                      response, MHD_OPTION_END)
	                                   : NULL;
	if (!conn || !http) {
		fprintf(stderr, "floor: cannot start libstrophe or libmicrohttpd\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
