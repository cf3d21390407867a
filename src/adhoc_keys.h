#ifndef INVITES_ADHOC_KEYS_H
#define INVITES_ADHOC_KEYS_H

/*
 * API key management from an XMPP client: the component's ad-hoc commands
 * "Create API key", "List API keys" and "Revoke API key", for the bare JIDs
 * in [component] admins, on top of the key store. This is daemon glue: it
 * logs each change and each store failure once.
 */

#include "component.h"
#include "config.h"
#include "keys.h"

#define ADHOC_KEYS_NODE_CREATE "urn:invites-api:create-key"
#define ADHOC_KEYS_NODE_LIST   "urn:invites-api:list-keys"
#define ADHOC_KEYS_NODE_REVOKE "urn:invites-api:revoke-key"

/* State of the commands; the caller owns it (e.g. in its daemon struct). */
struct adhoc_keys {
	struct keystore *store;
	const struct config *cfg;
};

/* Offer the three commands on comp. keys, store and cfg are borrowed and must
 * stay valid, unmoved, as long as comp. Returns 0, or -1 (out of memory, or
 * commands were already registered on comp). */
int adhoc_keys_register(struct adhoc_keys *keys, struct component *comp, struct keystore *store,
                        const struct config *cfg);

#endif
