/* The key management subcommands: check, create, list, delete. */

#include "commands.h"
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct keystore *open_store(const struct config *cfg)
{
	const char *errstr = NULL;
	if (keys_init() < 0) {
		fprintf(stderr, "invites-api: cannot initialise libsodium\n");
		return NULL;
	}
	struct keystore *store = keystore_open(cfg->keys.database, &errstr);
	if (store == NULL)
		fprintf(stderr, "invites-api: %s\n", errstr);
	return store;
}

/* The host as [component] hosts spells it, or NULL after telling the user. */
static const char *served_host(const struct config *cfg, const char *cfg_path, const char *host)
{
	const char *canonical = config_host(cfg, host);
	if (canonical == NULL)
		fprintf(stderr,
		        "invites-api: host \"%s\" is not served by this component "
		        "(not in [component] hosts of %s)\n",
		        host, cfg_path);
	return canonical;
}

/* stdout may be a closed pipe or a full disk: a key the user never saw must
 * not stay valid, so every write is checked. */
static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("invites-api: cannot write to standard output");
		return -1;
	}
	return 0;
}

int cmd_check(const struct config *cfg, const char *cfg_path, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("%s: configuration OK (component %s, %zu host%s, HTTP %s port %u)\n", cfg_path,
	       cfg->component.jid, cfg->component.n_hosts, cfg->component.n_hosts == 1 ? "" : "s",
	       cfg->http.bind, cfg->http.port);
	return flush_stdout() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int cmd_create(const struct config *cfg, const char *cfg_path, int argc, char **argv)
{
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	struct keystore *store = open_store(cfg);
	if (store == NULL)
		return EXIT_FAILURE;

	int status = EXIT_FAILURE;
	struct api_key_new key;
	const char *errstr = NULL;
	if (keystore_create(store, host, argv[1], &key, &errstr) != KEYS_OK) {
		fprintf(stderr, "invites-api: cannot create key: %s\n", errstr);
		goto out;
	}
	/* Only now, with the key committed, is it shown. */
	printf("%s\n", key.text);
	if (flush_stdout() < 0) {
		if (keystore_delete(store, host, key.id, &errstr) != KEYS_OK)
			fprintf(stderr, "invites-api: the unseen key %s could not be revoked: %s\n",
			        key.id, errstr);
		goto out;
	}
	status = EXIT_SUCCESS;
out:
	keys_wipe(&key);
	keystore_close(store);
	return status;
}

static int print_key(void *userdata, const struct api_key_info *key)
{
	(void)userdata;
	return printf("%s\t%s\n", key->id, key->name) < 0;
}

int cmd_list(const struct config *cfg, const char *cfg_path, int argc, char **argv)
{
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	struct keystore *store = open_store(cfg);
	if (store == NULL)
		return EXIT_FAILURE;

	const char *errstr = NULL;
	int status = EXIT_SUCCESS;
	if (keystore_list(store, host, print_key, NULL, &errstr) != KEYS_OK) {
		fprintf(stderr, "invites-api: cannot list keys: %s\n", errstr);
		status = EXIT_FAILURE;
	} else if (flush_stdout() < 0) {
		status = EXIT_FAILURE;
	}
	keystore_close(store);
	return status;
}

int cmd_delete(const struct config *cfg, const char *cfg_path, int argc, char **argv)
{
	(void)argc;
	const char *host = served_host(cfg, cfg_path, argv[0]);
	if (host == NULL)
		return EXIT_FAILURE;
	const char *id = argv[1];
	if (strchr(id, '/') != NULL) {
		/* Someone pasted the whole ID/SECRET: never echo it back. */
		fprintf(stderr, "invites-api: give the key ID only, the part before the '/'\n");
		return EXIT_FAILURE;
	}
	struct keystore *store = open_store(cfg);
	if (store == NULL)
		return EXIT_FAILURE;

	const char *errstr = NULL;
	int status = EXIT_FAILURE;
	switch (keystore_delete(store, host, id, &errstr)) {
	case KEYS_OK:
		printf("deleted key %s of %s\n", id, host);
		status = flush_stdout() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
		break;
	case KEYS_NOT_FOUND:
		fprintf(stderr, "invites-api: no key \"%s\" for host %s\n", id, host);
		break;
	default:
		fprintf(stderr, "invites-api: cannot delete key: %s\n", errstr);
		break;
	}
	keystore_close(store);
	return status;
}
