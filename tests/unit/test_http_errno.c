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
	CHECK_INT(http_status_errno(429, HTTP_API_STORE), -EAGAIN);
	CHECK_INT(http_status_errno(500, HTTP_API_STORE), -EIO);
	CHECK_INT(http_status_errno(503, HTTP_API_STORE), -EAGAIN);
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

	CHECK(http_status_retryable(408));
	CHECK(http_status_retryable(429));
	CHECK(http_status_retryable(500));
	CHECK(http_status_retryable(503));
	CHECK(!http_status_retryable(404));
	CHECK(!http_status_retryable(412));
	CHECK(!http_status_retryable(403));
	return check_summary();
}
