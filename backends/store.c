/*
 * store.c - the constructor that maps a configured store type to its
 * implementation, and the configuration's own helpers.  The only file of
 * the seam that knows every store.
 */
#include "backends/store.h"
#include "backends/backend.h"
#include "backends/gcs/gcs.h"
#include "backends/posix/posix.h"
#include "backends/s3/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *store_type_name(enum store_type t)
{
	switch (t) {
	case STORE_S3: return "s3";
	case STORE_POSIX: return "posix";
	case STORE_GCS: return "gcs";
	default: return "none";
	}
}

const char *verify_mode_name(enum verify_mode v)
{
	switch (v) {
	case VERIFY_BLOCKS: return "blocks";
	case VERIFY_TRUST: return "trust";
	default: return "whole-first";
	}
}

void store_conf_release(struct store_conf *c)
{
	free(c->name);
	free(c->endpoint);
	free(c->bucket);
	free(c->prefix);
	free(c->region);
	free(c->credentials);
	free(c->metadata_endpoint);
	free(c->profile);
	free(c->path);
	free(c->generation_key);
	memset(c, 0, sizeof(*c));
}

int store_create(const struct store_conf *c, struct backend **out,
		 char *err, size_t errlen)
{
	switch (c->type) {
	case STORE_S3:
		return s3_create(c, out, err, errlen);
	case STORE_POSIX:
		return posix_create(c, out, err, errlen);
	case STORE_GCS:
		return gcs_create(c, out, err, errlen);
	default:
		snprintf(err, errlen, "store type '%s' is not supported yet",
			 store_type_name(c->type));
		return -ENOTSUP;
	}
}
