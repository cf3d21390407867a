/*
 * loadgen: Prosody's own ceiling at creating invites. An XEP-0114 component
 * (libstrophe, like invites-api, with the same crash remedy) that keeps N
 * urn:xmpp:invite#create-account commands in flight straight to the host,
 * with no HTTP in the way, and reports completed commands per second and
 * their round-trip times as one JSON line on stdout.
 *
 *   loadgen --port P --jid J --secret S --host H --inflight N --duration SECS
 *           [--server ADDR] [--warmup SECS]
 *
 * Only commands completed inside the measurement window (after the warm-up)
 * count. Exit status: 0 measured, 1 could not connect or lost the stream,
 * 2 usage.
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <sys/select.h>
#include <time.h>

#define NS_COMMANDS         "http://jabber.org/protocol/commands"
#define NODE_CREATE_ACCOUNT "urn:xmpp:invite#create-account"
#define SLOTS               65536 /* send times by sequence number; > any in-flight count */
#define CONNECT_TIMEOUT_S   10
#define DRAIN_TIMEOUT_S     10

struct loadgen {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	const char *jid, *host;
	unsigned inflight;
	bool online, lost;
	bool sending;      /* false once the window closed: let the in-flight ones drain */
	unsigned long seq; /* next request number */
	unsigned outstanding;
	double window_start; /* s, monotonic */
	double window_end;
	double sent_at[SLOTS];
	double *rtt_us; /* round trips completed inside the window */
	size_t n_rtt, cap_rtt;
	unsigned long errors;
	char first_error[256];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int refuse_socket(xmpp_conn_t *conn, void *sock)
{
	(void)conn;
	(void)sock;
	return -1;
}

static int check_socket(xmpp_conn_t *conn, void *sock)
{
	(void)conn;
	return *(int *)sock < FD_SETSIZE ? 0 : -1; /* libstrophe select()s */
}

/* libstrophe 0.12.2 allocates its stream-management state only in
 * xmpp_connect_client() but uses it in component mode too: a client connect
 * whose socket the sockopt callback refuses allocates it with no network I/O
 * (the remedy of component/component.c). */
static int prime_connection(xmpp_conn_t *conn)
{
	xmpp_conn_set_sockopt_callback(conn, refuse_socket);
	int rc = xmpp_connect_client(conn, "127.0.0.1", 1, NULL, NULL);
	xmpp_conn_set_sockopt_callback(conn, check_socket);
	return rc == XMPP_EINT ? 0 : -1;
}

static int send_command(struct loadgen *lg)
{
	char id[32];
	snprintf(id, sizeof(id), "lg%lu", lg->seq);
	xmpp_stanza_t *iq = xmpp_iq_new(lg->ctx, "set", id);
	xmpp_stanza_t *cmd = xmpp_stanza_new(lg->ctx);
	if (!iq || !cmd)
		return -1;
	xmpp_stanza_set_from(iq, lg->jid);
	xmpp_stanza_set_to(iq, lg->host);
	xmpp_stanza_set_name(cmd, "command");
	xmpp_stanza_set_ns(cmd, NS_COMMANDS);
	xmpp_stanza_set_attribute(cmd, "node", NODE_CREATE_ACCOUNT);
	xmpp_stanza_set_attribute(cmd, "action", "execute");
	xmpp_stanza_add_child(iq, cmd);
	xmpp_stanza_release(cmd);
	lg->sent_at[lg->seq % SLOTS] = now_s();
	lg->seq++;
	lg->outstanding++;
	xmpp_send(lg->conn, iq);
	xmpp_stanza_release(iq);
	return 0;
}

static void record_rtt(struct loadgen *lg, double rtt_us)
{
	if (lg->n_rtt == lg->cap_rtt) {
		size_t cap = lg->cap_rtt ? lg->cap_rtt * 2 : 65536;
		double *grown = realloc(lg->rtt_us, cap * sizeof(*grown));
		if (!grown) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(1);
		}
		lg->rtt_us = grown;
		lg->cap_rtt = cap;
	}
	lg->rtt_us[lg->n_rtt++] = rtt_us;
}

/* A completed create-account answer carries <command status='completed'>
 * with the invite form; anything else is an error. */
static bool completed(xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq);
	xmpp_stanza_t *cmd = xmpp_stanza_get_child_by_name_and_ns(iq, "command", NS_COMMANDS);
	const char *status = cmd ? xmpp_stanza_get_attribute(cmd, "status") : NULL;
	return type && strcmp(type, "result") == 0 && status && strcmp(status, "completed") == 0 &&
	       xmpp_stanza_get_child_by_ns(cmd, "jabber:x:data") != NULL;
}

static int handle_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	struct loadgen *lg = userdata;
	const char *id = xmpp_stanza_get_id(stanza);
	const char *type = xmpp_stanza_get_type(stanza);
	char *end;
	(void)conn;

	if (!id || strncmp(id, "lg", 2) != 0 || !type ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 1;
	errno = 0;
	unsigned long n = strtoul(id + 2, &end, 10);
	if (errno || *end || n >= lg->seq || lg->seq - n > lg->inflight)
		return 1;

	double now = now_s();
	lg->outstanding--;
	if (!completed(stanza)) {
		if (lg->errors++ == 0) {
			char *text = NULL;
			size_t len = 0;
			xmpp_stanza_to_text(stanza, &text, &len);
			snprintf(lg->first_error, sizeof(lg->first_error), "%s", text ? text : "?");
			xmpp_free(lg->ctx, text);
		}
	} else if (now >= lg->window_start && now < lg->window_end) {
		record_rtt(lg, (now - lg->sent_at[n % SLOTS]) * 1e6);
	}
	if (lg->sending && now < lg->window_end)
		send_command(lg);
	return 1;
}

static void handle_connection(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                              xmpp_stream_error_t *stream_error, void *userdata)
{
	struct loadgen *lg = userdata;
	(void)conn;
	(void)stream_error;

	if (event == XMPP_CONN_CONNECT) {
		lg->online = true;
		return;
	}
	if (lg->online && lg->sending)
		fprintf(stderr, "loadgen: lost the stream (error %d)\n", error);
	if (!lg->online)
		fprintf(stderr, "loadgen: cannot connect as component %s (error %d%s)\n", lg->jid,
		        error, stream_error ? ", stream error" : "");
	lg->lost = lg->sending || !lg->online;
	lg->online = false;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen --port P --jid J --secret S --host H --inflight N "
	                "--duration SECS [--server ADDR] [--warmup SECS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"server", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"jid", required_argument, NULL, 'j'},
	    {"secret", required_argument, NULL, 's'},
	    {"host", required_argument, NULL, 'h'},
	    {"inflight", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 'd'},
	    {"warmup", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	static struct loadgen lg;
	const char *server = "127.0.0.1", *secret = NULL;
	unsigned short port = 0;
	double duration = 0, warmup = 1;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'a':
			server = optarg;
			break;
		case 'p':
			port = (unsigned short)atoi(optarg);
			break;
		case 'j':
			lg.jid = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 'h':
			lg.host = optarg;
			break;
		case 'n':
			lg.inflight = (unsigned)atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (!port || !lg.jid || !secret || !lg.host || lg.inflight == 0 ||
	    lg.inflight >= SLOTS / 2 || duration <= 0 || warmup < 0)
		usage();

	xmpp_initialize();
	lg.ctx = xmpp_ctx_new(NULL, NULL);
	lg.conn = xmpp_conn_new(lg.ctx);
	xmpp_conn_set_jid(lg.conn, lg.jid);
	xmpp_conn_set_pass(lg.conn, secret);
	if (prime_connection(lg.conn) != 0) {
		fprintf(stderr, "loadgen: cannot prepare the libstrophe connection\n");
		return 1;
	}
	xmpp_handler_add(lg.conn, handle_iq, NULL, "iq", NULL, &lg);
	if (xmpp_connect_component(lg.conn, server, port, handle_connection, &lg) != XMPP_EOK) {
		fprintf(stderr, "loadgen: cannot connect to %s:%u\n", server, port);
		return 1;
	}
	double deadline = now_s() + CONNECT_TIMEOUT_S;
	while (!lg.online && !lg.lost && now_s() < deadline)
		xmpp_run_once(lg.ctx, 10);
	if (!lg.online) {
		fprintf(stderr, "loadgen: not connected after %d s\n", CONNECT_TIMEOUT_S);
		return 1;
	}

	lg.window_start = now_s() + warmup;
	lg.window_end = lg.window_start + duration;
	lg.sending = true;
	for (unsigned i = 0; i < lg.inflight; i++)
		send_command(&lg);
	while (!lg.lost && now_s() < lg.window_end)
		xmpp_run_once(lg.ctx, 1);
	lg.sending = false;
	deadline = now_s() + DRAIN_TIMEOUT_S;
	while (!lg.lost && lg.outstanding > 0 && now_s() < deadline)
		xmpp_run_once(lg.ctx, 1);
	bool lost = lg.lost;
	if (!lost) {
		xmpp_disconnect(lg.conn);
		deadline = now_s() + 2;
		while (!xmpp_conn_is_disconnected(lg.conn) && now_s() < deadline)
			xmpp_run_once(lg.ctx, 10);
	}

	qsort(lg.rtt_us, lg.n_rtt, sizeof(*lg.rtt_us), compare_double);
	printf("{\"inflight\": %u, \"completed\": %zu, \"seconds\": %.3f, \"rate\": %.1f, "
	       "\"p50_us\": %.0f, \"p99_us\": %.0f, \"errors\": %lu, \"unanswered\": %u}\n",
	       lg.inflight, lg.n_rtt, duration, (double)lg.n_rtt / duration,
	       percentile(lg.rtt_us, lg.n_rtt, 50), percentile(lg.rtt_us, lg.n_rtt, 99), lg.errors,
	       lg.outstanding);
	if (lg.errors)
		fprintf(stderr, "loadgen: %lu errors, the first: %s\n", lg.errors, lg.first_error);
	free(lg.rtt_us);
	xmpp_conn_release(lg.conn);
	xmpp_ctx_free(lg.ctx);
	xmpp_shutdown();
	return lost ? 1 : 0;
}
