#include "http-internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* IPv4 addresses are kept as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that one
 * comparison serves both families and a v4 peer seen on a v6 socket is the
 * same client as on a v4 socket. */
static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const struct net_addr *a)
{
	return memcmp(a->bytes, v4_mapped, sizeof(v4_mapped)) == 0;
}

int address_parse(const char *s, size_t len, struct net_addr *out)
{
	char text[INET6_ADDRSTRLEN + 2];

	/* "[v6]" as some proxies write it. */
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, out->bytes + 12) == 1) {
		memcpy(out->bytes, v4_mapped, sizeof(v4_mapped));
		return 0;
	}
	return inet_pton(AF_INET6, text, out->bytes) == 1 ? 0 : -1;
}

int prefix_parse(const char *s, struct net_prefix *out)
{
	const char *slash = strchr(s, '/');
	size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);

	if (address_parse(s, len, &out->addr) != 0)
		return -1;
	unsigned max = is_v4(&out->addr) ? 32 : 128;
	unsigned bits = max;
	if (slash != NULL) {
		char *end;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		unsigned long n = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || n > max)
			return -1;
		bits = (unsigned)n;
	}
	out->bits = bits + (128 - max);
	/* Clear the host bits, so "10.1.2.3/8" means 10.0.0.0/8. */
	for (unsigned i = out->bits; i < 128; i++)
		out->addr.bytes[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return 0;
}

bool prefix_contains(const struct net_prefix *p, const struct net_addr *a)
{
	unsigned full = p->bits / 8, rest = p->bits % 8;

	if (memcmp(p->addr.bytes, a->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff00u >> rest);
	return (p->addr.bytes[full] & mask) == (a->bytes[full] & mask);
}

int address_from_sockaddr(const struct sockaddr *sa, struct net_addr *out)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		memcpy(out->bytes, v4_mapped, sizeof(v4_mapped));
		memcpy(out->bytes + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(out->bytes, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* Dotted quad, as inet_ntop() writes it; without its sprintf(), as this
 * runs for the log line of every request. */
static bool format_v4(const unsigned char *b, char *dst, size_t size)
{
	char text[INET_ADDRSTRLEN];
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (i > 0)
			text[n++] = '.';
		if (v >= 100)
			text[n++] = (char)('0' + v / 100);
		if (v >= 10)
			text[n++] = (char)('0' + v / 10 % 10);
		text[n++] = (char)('0' + v % 10);
	}
	if (n >= size)
		return false;
	memcpy(dst, text, n);
	dst[n] = '\0';
	return true;
}

void address_format(const struct net_addr *a, char *dst, size_t size)
{
	bool done = is_v4(a) ? format_v4(a->bytes + 12, dst, size)
	                     : inet_ntop(AF_INET6, a->bytes, dst, (socklen_t)size) != NULL;
	if (!done && size > 0)
		snprintf(dst, size, "-");
}

void address_group(const struct net_addr *a, struct net_addr *group)
{
	*group = *a;
	/* One IPv6 subscriber usually holds a whole /64. */
	if (!is_v4(a))
		memset(group->bytes + 8, 0, 8);
}

static bool trusted(const struct net_prefix *proxies, size_t n, const struct net_addr *a)
{
	for (size_t i = 0; i < n; i++) {
		if (prefix_contains(&proxies[i], a))
			return true;
	}
	return false;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Walk one X-Forwarded-For value from its right end. Each trusted hop moves
 * the client one step further left; the first hop that is not trusted is the
 * client. Returns true when the walk is over (client found, or a hop that is
 * not an address, where the last trusted hop stays the client).
 */
static bool walk_hops(const char *value, size_t len, const struct net_prefix *proxies, size_t n,
                      struct net_addr *client)
{
	size_t end = len;

	while (end > 0) {
		size_t start = end;
		while (start > 0 && value[start - 1] != ',')
			start--;
		size_t a = start, b = end;
		while (a < b && is_ows(value[a]))
			a++;
		while (b > a && is_ows(value[b - 1]))
			b--;
		end = start > 0 ? start - 1 : 0;
		if (a == b && start > 0)
			continue; /* empty list element */
		struct net_addr hop;
		if (address_parse(value + a, b - a, &hop) != 0)
			return true;
		*client = hop;
		if (!trusted(proxies, n, &hop))
			return true;
		if (start == 0)
			break;
	}
	return false;
}

void forwarded_client(const struct net_addr *peer, const char *const *values, const size_t *lens,
                      size_t n_values, const struct net_prefix *proxies, size_t n_proxies,
                      struct net_addr *client)
{
	*client = *peer;
	if (!trusted(proxies, n_proxies, peer))
		return;
	/* Several header lines form one list, in order (RFC 9110 5.3). */
	for (size_t i = n_values; i > 0; i--) {
		if (walk_hops(values[i - 1], lens[i - 1], proxies, n_proxies, client))
			return;
	}
}
