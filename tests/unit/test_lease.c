/*
 * test_lease.c - leases over the memory store, with the fault store for
 * a holder that cannot renew.
 */
#include "check.h"
#include "backends/composite/fault.h"
#include "backends/composite/lease.h"
#include "backends/mem/mem.h"
#include "backends/util/strbuf.h"
#include "backends/util/timeutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#define TTL 600

static struct lease_mgr *mgr(struct backend *store, const char *holder)
{
	struct lease_conf c = { .store = store, .holder = holder,
				.ttl_ms = TTL, .op_timeout_ms = 2000 };
	int err = 0;
	struct lease_mgr *m = lease_mgr_create(&c, &err);
	CHECK(m != NULL);
	return m;
}

static void sleep_ms(int64_t ms)
{
	usleep((useconds_t)(ms * 1000));
}

/* One wins, the other is told; release lets the other in at once. */
static void exclusive(void)
{
	struct backend *s = mem_create_writable("src");
	struct lease_mgr *a = mgr(s, "host-a"), *b = mgr(s, "host-b");
	struct lease *la = NULL, *lb = NULL;
	struct lease_info li;

	CHECK_INT(lease_try(a, "L", &la), 0);
	CHECK_INT(lease_try(b, "L", &lb), -EWOULDBLOCK);
	CHECK_INT(lease_inspect(b, "L", &li), 0);
	CHECK_STR(li.holder, "host-a");
	CHECK(!li.mine);
	CHECK_INT(li.ttl_ms, TTL);
	CHECK_INT(lease_inspect(a, "L", &li), 0);
	CHECK(li.mine);
	/* renewed while held: never taken over, however long b looks */
	for (int i = 0; i < 6; i++) {
		sleep_ms(TTL / 3);
		CHECK_INT(lease_try(b, "L", &lb), -EWOULDBLOCK);
		CHECK_INT(lease_check(la), 0);
	}
	CHECK_INT(lease_inspect(a, "L", &li), 0);
	CHECK(li.metageneration >= 4);          /* renewals, not rewrites */
	CHECK_INT(li.generation, mem_generation(s, "L"));
	lease_release(la);
	CHECK_INT(mem_generation(s, "L"), -ENOENT);
	CHECK_INT(lease_try(b, "L", &lb), 0);
	CHECK_INT(lease_inspect(a, "L", &li), 0);
	CHECK_STR(li.holder, "host-b");
	lease_release(lb);
	lease_mgr_destroy(a);
	lease_mgr_destroy(b);
	backend_destroy(s);
}

/* A holder that is gone (no renewals): taken over after a ttl seen
 * unchanged, not before. */
static void takeover(void)
{
	struct backend *s = mem_create_writable("src");
	struct lease_mgr *a = mgr(s, "host-a"), *b = mgr(s, "host-b");
	struct lease *la = NULL, *lb = NULL;

	CHECK_INT(lease_try(a, "L", &la), 0);
	/* a dies: its manager stops without releasing (the object stays) */
	lease_mgr_destroy(a);                   /* releases: put it back */
	CHECK(mem_put(s, "L", "{\"holder\":\"ghost\",\"ttl_ms\":600}", 30,
		      NULL) > 0);
	int64_t t0 = mono_ns();
	int rc;
	while ((rc = lease_try(b, "L", &lb)) == -EWOULDBLOCK)
		sleep_ms(50);
	CHECK_INT(rc, 0);
	CHECK((mono_ns() - t0) / NS_PER_MS >= TTL);
	lease_release(lb);
	lease_mgr_destroy(b);
	backend_destroy(s);
}

/* A blocking acquire waits for the release, and can be cancelled. */
static bool flag(void *arg)
{
	return atomic_load((atomic_bool *)arg);
}

static void blocking(void)
{
	struct backend *s = mem_create_writable("src");
	struct lease_mgr *a = mgr(s, "host-a"), *b = mgr(s, "host-b");
	struct lease *la = NULL, *lb = NULL;
	atomic_bool yes = true;

	CHECK_INT(lease_try(a, "L", &la), 0);
	CHECK_INT(lease_acquire(b, "L", flag, &yes, &lb), -EINTR);
	lease_release(la);
	CHECK_INT(lease_acquire(b, "L", NULL, NULL, &lb), 0);
	lease_release(lb);
	lease_mgr_destroy(a);
	lease_mgr_destroy(b);
	backend_destroy(s);
}

/* Renewals fail: the holder is told before a contender can take over;
 * then the contender takes it and the old holder learns it lost it. */
static void renewal_fails(void)
{
	struct backend *s = fault_create(mem_create_writable("src"), 1);
	struct lease_mgr *a = mgr(s, "host-a"), *b = mgr(s, "host-b");
	struct lease *la = NULL, *lb = NULL;
	struct fault_rule r = { .op = FAULT_SET_META, .action = FAULT_FAIL,
				.err = -ETIMEDOUT };

	CHECK_INT(lease_try(a, "L", &la), 0);
	CHECK(fault_add(s, &r) >= 0);
	int64_t t0 = mono_ns();
	CHECK_INT(lease_try(b, "L", &lb), -EWOULDBLOCK);    /* watch */
	while (lease_check(la) == 0)
		sleep_ms(10);
	int64_t told = mono_ns();
	CHECK((told - t0) / NS_PER_MS <= TTL * 2 / 3 + 50);
	int rc;
	while ((rc = lease_try(b, "L", &lb)) == -EWOULDBLOCK)
		sleep_ms(20);
	CHECK_INT(rc, 0);
	CHECK(mono_ns() - told > 0);
	CHECK((mono_ns() - t0) / NS_PER_MS >= TTL);
	fault_clear(s);
	sleep_ms(TTL / 2);                      /* a renews: finds it lost */
	CHECK_INT(lease_check(la), -ENOLCK);
	CHECK_INT(lease_check(lb), 0);
	lease_release(la);                      /* lost: removes nothing */
	CHECK_INT(lease_check(lb), 0);
	struct lease_info li;
	CHECK_INT(lease_inspect(b, "L", &li), 0);
	CHECK_STR(li.holder, "host-b");
	struct strbuf sb = STRBUF_INIT;
	lease_info_describe(&li, &sb);
	CHECK(strstr(sb.buf, "held by host-b (this mount)") != NULL);
	strbuf_release(&sb);
	lease_release(lb);
	lease_mgr_destroy(a);
	lease_mgr_destroy(b);
	backend_destroy(s);
}

/* A renewal whose answer was lost and is sent again keeps the lease;
 * a read-only store refuses. */
static void edges(void)
{
	struct backend *ro = mem_create("ro");
	struct lease_mgr *m = mgr(ro, "h");
	struct lease *l = NULL;
	CHECK_INT(lease_try(m, "L", &l), -EROFS);
	lease_mgr_destroy(m);
	backend_destroy(ro);

	struct lease_conf c = { .store = ro, .holder = "h", .ttl_ms = 10 };
	int err = 0;
	CHECK(lease_mgr_create(&c, &err) == NULL);
	CHECK_INT(err, -EINVAL);

	struct backend *s = mem_create_writable("src");
	struct write_pre pre = { .kind = WRITE_PRE_GENERATION,
				 .generation = 1, .metageneration = 2 };
	struct obj_info got;
	CHECK(mem_put(s, "o", "x", 1, NULL) == 1);
	CHECK_INT(backend_set_meta(s, "o", &pre, NULL, 0, &got, NULL),
		  -ESTALE);
	pre.metageneration = 1;
	CHECK_INT(backend_set_meta(s, "o", &pre, NULL, 0, &got, NULL), 0);
	CHECK_INT(got.metageneration, 2);
	CHECK_INT(got.generation, 1);
	pre.kind = WRITE_PRE_ABSENT;
	CHECK_INT(backend_set_meta(s, "o", &pre, NULL, 0, &got, NULL),
		  -EINVAL);
	backend_destroy(s);
}

int main(void)
{
	exclusive();
	takeover();
	blocking();
	renewal_fails();
	edges();
	return check_summary();
}
