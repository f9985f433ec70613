/* libFuzzer target: the configuration file parser and validator. */
#include "mount/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/hylake-fuzz-config-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	FILE *sink = fopen("/dev/null", "w");
	struct hy_config cfg;
	if (config_load(path, &cfg, sink) == 0)
		config_release(&cfg);
	fclose(sink);
	unlink(path);
	return 0;
}
