/*
 * Fuzz target: component.cfg parsing (src/config.c with inih). The input is
 * the file's text; it is written to a memfd and loaded through its
 * /proc/self/fd path, so config_load() runs exactly as for a real file
 * (including its check for lines inih would cut).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		fd = memfd_create("fuzz_config", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();

	struct config cfg;
	char err[512];
	err[0] = '\0';
	if (config_load(&cfg, path, err, sizeof(err)) == 0) {
		/* What the daemon relies on after a successful load. */
		/* exactly one of secret and secret_file (read later, config_secret()) */
		bool one_secret =
		    (cfg.component.secret != NULL) != (cfg.component.secret_file != NULL);
		if (!cfg.component.jid || !one_secret || cfg.component.n_hosts == 0 ||
		    cfg.component.n_hosts > CONFIG_HOSTS_MAX ||
		    cfg.component.n_admins > CONFIG_ADMINS_MAX || !cfg.http.path ||
		    !cfg.keys.database)
			abort();
		for (size_t i = 0; i < cfg.component.n_hosts; i++) {
			if (!config_serves_host(&cfg, cfg.component.hosts[i]))
				abort();
		}
		config_finish(&cfg);
	} else {
		/* One line that names the file; config_finish() on a failure is harmless. */
		if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n'))
			abort();
		config_finish(&cfg);
	}
	return 0;
}
