/* The one map from HTTP status to errno, and what is retried. */
#include "backends/http/http.h"
#include "tests/unit/check.h"

#include <errno.h>

int main(void)
{
	CHECK_INT(http_status_errno(200, HTTP_API_STORE), 0);
	CHECK_INT(http_status_errno(206, HTTP_API_STORE), 0);
	CHECK_INT(http_status_errno(400, HTTP_API_STORE), -EINVAL);
	CHECK_INT(http_status_errno(401, HTTP_API_STORE), -EACCES);
	CHECK_INT(http_status_errno(403, HTTP_API_STORE), -EACCES);
	CHECK_INT(http_status_errno(404, HTTP_API_STORE), -ENOENT);
	CHECK_INT(http_status_errno(408, HTTP_API_STORE), -ETIMEDOUT);
	CHECK_INT(http_status_errno(412, HTTP_API_STORE), -ESTALE);
	CHECK_INT(http_status_errno(416, HTTP_API_STORE), -ERANGE);
	/* still throttled after the retries: a hard error, not EAGAIN */
	CHECK_INT(http_status_errno(429, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(500, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(503, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(504, HTTP_API_STORE), -ETIMEDOUT);
	CHECK_INT(http_status_errno(418, HTTP_API_STORE), -EIO);
	/* only a 2xx is success: a 304 or a 1xx is not an answer to use */
	CHECK_INT(http_status_errno(304, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(100, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(299, HTTP_API_STORE), 0);
	/* a token endpoint's 400 is a refused grant (RFC 6749 5.2) */
	CHECK_INT(http_status_errno(400, HTTP_API_TOKEN), -EACCES);
	CHECK_INT(http_status_errno(401, HTTP_API_TOKEN), -EACCES);
	CHECK_INT(http_status_errno(404, HTTP_API_TOKEN), -ENOENT);
	CHECK_INT(http_status_errno(200, HTTP_API_TOKEN), 0);
	/* a resumable upload session: 308 is "Resume Incomplete", an answer;
	 * a session gone (expired, cancelled) lost the bytes sent into it */
	static const struct { long status; int session, store; } upload[] = {
		{ 308, 0, -EIO }, { 200, 0, 0 }, { 404, -EIO, -ENOENT },
		{ 410, -EIO, -ENOENT }, { 412, -ESTALE, -ESTALE },
		{ 499, -EIO, -EIO },
	};
	for (size_t i = 0; i < sizeof(upload) / sizeof(upload[0]); i++) {
		CHECK_INT(http_status_errno(upload[i].status,
					    HTTP_API_UPLOAD_SESSION),
			  upload[i].session);
		CHECK_INT(http_status_errno(upload[i].status, HTTP_API_STORE),
			  upload[i].store);
	}

	CHECK(http_status_retryable(408));
	CHECK(http_status_retryable(429));
	CHECK(http_status_retryable(500));
	CHECK(http_status_retryable(503));
	CHECK(!http_status_retryable(404));
	CHECK(!http_status_retryable(412));
	CHECK(!http_status_retryable(403));

	/* what http_do() would have retried: a transport failure or a
	 * retryable status */
	struct http_resp r;
	http_resp_init(&r);
	CHECK(http_transient(-ECONNRESET, &r));
	CHECK(http_transient(-ETIMEDOUT, &r));
	CHECK(!http_transient(-ECANCELED, &r));
	CHECK(!http_transient(-EMSGSIZE, &r));
	r.status = 503;
	CHECK(http_transient(-EIO, &r));
	r.status = 412;
	CHECK(!http_transient(-ESTALE, &r));
	http_resp_release(&r);

	/* Retry-After: delta-seconds or an HTTP-date, cut at an hour */
	int64_t now = 1445412480;                /* Wed, 21 Oct 2015 07:28:00 */
	CHECK(http_retry_after_ms("0", now) == 0);
	CHECK(http_retry_after_ms("3", now) == 3000);
	CHECK(http_retry_after_ms(" 120 ", now) == 120000);
	CHECK(http_retry_after_ms("99999999", now) == 3600 * 1000);
	CHECK(http_retry_after_ms("99999999999999999999999", now) ==
	      3600 * 1000);
	CHECK(http_retry_after_ms("Wed, 21 Oct 2015 07:28:05 GMT", now) == 5000);
	CHECK(http_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0);
	CHECK(http_retry_after_ms("soon", now) == -1);
	CHECK(http_retry_after_ms("5s", now) == -1);
	CHECK(http_retry_after_ms("", now) == -1);

	/* The retry budget: a burst, then a tenth of the calls. */
	struct http_retry_budget b;
	int64_t t = 1000 * NS_PER_SEC;
	http_budget_init(&b, t);
	int granted = 0;
	for (int i = 0; i < 100; i++) {           /* a storm, all at once */
		http_budget_request(&b, t);
		if (http_budget_take(&b, t))
			granted++;
	}
	CHECK(granted >= 10 && granted <= 21);
	/* spent: no retry now, until calls or time earn one */
	CHECK(!http_budget_take(&b, t));
	for (int i = 0; i < 10; i++)
		http_budget_request(&b, t);
	CHECK(http_budget_take(&b, t));
	CHECK(!http_budget_take(&b, t));
	CHECK(http_budget_take(&b, t + 1 * NS_PER_SEC));   /* one a second */
	/* it never saves up more than the burst */
	http_budget_request(&b, t + 3600 * NS_PER_SEC);
	int burst = 0;
	while (http_budget_take(&b, t + 3600 * NS_PER_SEC))
		burst++;
	CHECK_INT(burst, (int)HTTP_RETRY_BURST);
	return check_summary();
}
