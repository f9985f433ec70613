/*
 * libFuzzer target: Storage Insights inventory reports (CSV; outside
 * input).  Every object given holds a name, within the prefix, and a
 * generation.
 */
#include "backends/gcs/inventory.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *arg, const struct list_entry *e)
{
	(void)arg;
	if (!e->name || !e->name[0] || !e->info.generation)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inventory_counts c;
	char err[256];

	inventory_parse((const char *)data, size, "lake", "t/", check, NULL,
			&c, err, sizeof(err));
	if (c.objects + c.skipped != c.rows)
		__builtin_trap();
	return 0;
}
