/*
 * The fake XMPP server of fake_xmpp.h: a byte buffer per connection, cut
 * into top-level elements by a small scanner that knows just enough XML
 * (quotes, self-closing tags) for what libstrophe sends.
 */

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_xmpp.h"
#include "unit.h"

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void fake_send(struct fake *f, const char *fmt, ...)
{
	char buf[16384];
	va_list ap;

	va_start(ap, fmt);
	int len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	CU_ASSERT_FATAL(len > 0 && (size_t)len < sizeof(buf));
	CU_ASSERT_FATAL(f->conn_fd >= 0);
	CU_ASSERT_EQUAL(send(f->conn_fd, buf, (size_t)len, MSG_NOSIGNAL), len);
}

bool fake_send_bytes(struct fake *f, struct component *comp, const char *data, size_t len,
                     unsigned wait_ms)
{
	uint64_t deadline = now_ms() + wait_ms;
	size_t sent = 0;

	while (sent < len && f->conn_fd >= 0) {
		ssize_t n = send(f->conn_fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		else if (!fake_pump(f, comp, deadline, 10))
			break;
	}
	return sent == len;
}

void fake_close(struct fake *f)
{
	if (f->conn_fd >= 0)
		close(f->conn_fd);
	f->conn_fd = -1;
}

void fake_init(struct fake *f, const char *jid, const char *secret, bool reject_secret)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);

	memset(f, 0, sizeof(*f));
	f->jid = jid;
	f->secret = secret;
	f->reject_secret = reject_secret;
	f->conn_fd = -1;
	f->ctx = xmpp_ctx_new(NULL, NULL);
	f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(f->ctx && f->listen_fd >= 0);
	CU_ASSERT_FATAL(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CU_ASSERT_FATAL(listen(f->listen_fd, 4) == 0);
	CU_ASSERT_FATAL(getsockname(f->listen_fd, (struct sockaddr *)&addr, &len) == 0);
	f->port = ntohs(addr.sin_port);
}

void fake_finish(struct fake *f)
{
	fake_close(f);
	close(f->listen_fd);
	for (unsigned i = 0; i < f->n_received; i++)
		xmpp_stanza_release(f->received[i]);
	xmpp_ctx_free(f->ctx);
}

static void consume(struct fake *f, size_t n)
{
	memmove(f->in, f->in + n, f->in_len - n);
	f->in_len -= n;
}

/* Length of the first complete top-level element in s, 0 if incomplete. */
static size_t element_length(const char *s, size_t len)
{
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '<')
			continue;
		char quote = 0;
		size_t j = i + 1;
		for (; j < len; j++) {
			if (quote && s[j] == quote)
				quote = 0;
			else if (!quote && (s[j] == '"' || s[j] == '\''))
				quote = s[j];
			else if (!quote && s[j] == '>')
				break;
		}
		if (j == len)
			return 0;
		if (s[i + 1] == '/')
			depth--;
		else if (s[j - 1] != '/')
			depth++;
		i = j;
		if (depth == 0)
			return j + 1;
	}
	return 0;
}

static void handshake(struct fake *f)
{
	char *end = memmem(f->in, f->in_len, "</handshake>", 12);
	if (!end)
		return;
	char *start = memchr(f->in, '>', (size_t)(end - f->in));
	CU_ASSERT_FATAL(start != NULL);
	char expected_input[128];
	snprintf(expected_input, sizeof(expected_input), "%s%s", f->stream_id, f->secret);
	char *expected = xmpp_sha1(f->ctx, (unsigned char *)expected_input, strlen(expected_input));
	bool ok = expected && (size_t)(end - start - 1) == strlen(expected) &&
	          memcmp(start + 1, expected, strlen(expected)) == 0;
	xmpp_free(f->ctx, expected);
	CU_ASSERT_TRUE(ok); /* the component computed the digest right */
	consume(f, (size_t)(end + 12 - f->in));
	if (ok && !f->reject_secret) {
		fake_send(f, "<handshake/>");
		f->handshakes++;
		f->phase = FAKE_ONLINE;
		return;
	}
	fake_send(f, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
	             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not "
	             "match calculated token</text></stream:error></stream:stream>");
	if (f->rejects < FAKE_REJECTS_KEPT)
		f->reject_at[f->rejects] = now_ms();
	f->rejects++;
	fake_close(f);
}

static void receive_stanzas(struct fake *f)
{
	while (f->in_len > 0) {
		size_t skip = 0;
		while (skip < f->in_len && strchr(" \t\r\n", f->in[skip]))
			skip++;
		consume(f, skip);
		if (f->in_len >= 16 && memcmp(f->in, "</stream:stream>", 16) == 0) {
			f->got_stream_close = true;
			/* the component may be gone already: no check */
			(void)!send(f->conn_fd, "</stream:stream>", 16, MSG_NOSIGNAL);
			fake_close(f);
			return;
		}
		size_t len = element_length(f->in, f->in_len);
		if (len == 0)
			return;
		if (len >= 13 && memcmp(f->in, "<stream:error", 13) == 0) {
			/* its prefix is bound by the stream header: not a stanza */
			f->stream_errors++;
			consume(f, len);
			continue;
		}
		char saved = f->in[len];
		f->in[len] = '\0';
		xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(f->ctx, f->in);
		f->in[len] = saved;
		CU_ASSERT_PTR_NOT_NULL_FATAL(stanza);
		CU_ASSERT_FATAL(f->n_received < FAKE_RECEIVED_MAX);
		f->received[f->n_received++] = stanza;
		consume(f, len);
	}
}

static void accept_component(struct fake *f)
{
	int fd = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	CU_ASSERT_EQUAL(f->conn_fd, -1); /* one stream at a time */
	fake_close(f);
	f->conn_fd = fd;
	f->phase = FAKE_WAIT_HEADER;
	f->in_len = 0;
	f->accepts++;
	snprintf(f->stream_id, sizeof(f->stream_id), "fake-stream-%u", f->accepts);
}

/* Read what the component sent; false once the connection is gone. */
static bool read_component(struct fake *f)
{
	bool eof = false;
	while (f->conn_fd >= 0 && f->in_len < sizeof(f->in) - 1) {
		ssize_t n = read(f->conn_fd, f->in + f->in_len, sizeof(f->in) - 1 - f->in_len);
		eof = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
		if (n <= 0)
			break;
		f->in_len += (size_t)n;
	}
	if (f->conn_fd < 0)
		return false;
	if (eof) {
		/* what came before the close still counts */
		if (f->phase == FAKE_ONLINE)
			receive_stanzas(f);
		fake_close(f);
		return false;
	}
	return true;
}

static void serve(struct fake *f)
{
	accept_component(f);
	if (!read_component(f))
		return;
	if (f->phase == FAKE_WAIT_HEADER) {
		char *tag = memmem(f->in, f->in_len, "<stream:stream", 14);
		char *end = tag ? memchr(tag, '>', f->in_len - (size_t)(tag - f->in)) : NULL;
		if (!end)
			return;
		consume(f, (size_t)(end + 1 - f->in));
		fake_send(f,
		          "<?xml version='1.0'?><stream:stream from='%s' "
		          "xmlns='jabber:component:accept' xml:lang='en' "
		          "xmlns:stream='http://etherx.jabber.org/streams' id='%s'>",
		          f->jid, f->stream_id);
		f->phase = FAKE_WAIT_HANDSHAKE;
	}
	if (f->phase == FAKE_WAIT_HANDSHAKE)
		handshake(f);
	if (f->conn_fd >= 0 && f->phase == FAKE_ONLINE)
		receive_stanzas(f);
}

bool fake_pump(struct fake *f, struct component *comp, uint64_t deadline, int poll_max_ms)
{
	uint64_t now = now_ms();
	if (now >= deadline)
		return false;

	struct pollfd pfd[3];
	nfds_t n = 0;
	int fd = component_fd(comp);
	if (fd >= 0)
		pfd[n++] = (struct pollfd){
		    .fd = fd, .events = POLLIN | (component_wants_write(comp) ? POLLOUT : 0)};
	pfd[n++] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
	if (f->conn_fd >= 0)
		pfd[n++] = (struct pollfd){.fd = f->conn_fd, .events = POLLIN};
	int timeout = component_next_timeout(comp);
	if (timeout < 0 || timeout > poll_max_ms)
		timeout = poll_max_ms;
	if ((uint64_t)timeout > deadline - now)
		timeout = (int)(deadline - now);
	poll(pfd, n, timeout);
	serve(f);
	if (!f->skip_idle || fd < 0 || pfd[0].revents != 0 || !component_idle(comp)) {
		component_run(comp);
		f->runs++;
	}
	return true;
}

xmpp_stanza_t *fake_next_stanza(struct fake *f, struct component *comp, unsigned wait_ms,
                                int poll_max_ms)
{
	uint64_t deadline = now_ms() + wait_ms;
	while (f->n_taken == f->n_received && fake_pump(f, comp, deadline, poll_max_ms))
		;
	if (f->n_taken == f->n_received)
		return NULL;
	return f->received[f->n_taken++];
}

void fake_forget_taken(struct fake *f)
{
	for (unsigned i = 0; i < f->n_taken; i++)
		xmpp_stanza_release(f->received[i]);
	memmove(f->received, f->received + f->n_taken,
	        (f->n_received - f->n_taken) * sizeof(f->received[0]));
	f->n_received -= f->n_taken;
	f->n_taken = 0;
}
