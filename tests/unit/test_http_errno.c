/* The one map from HTTP status to errno, and what is retried. */
#include "backends/http/http.h"
#include "tests/unit/check.h"

#include <errno.h>

int main(void)
{
	CHECK_INT(http_status_errno(200), 0);
	CHECK_INT(http_status_errno(206), 0);
	CHECK_INT(http_status_errno(400), -EINVAL);
	CHECK_INT(http_status_errno(401), -EACCES);
	CHECK_INT(http_status_errno(403), -EACCES);
	CHECK_INT(http_status_errno(404), -ENOENT);
	CHECK_INT(http_status_errno(408), -ETIMEDOUT);
	CHECK_INT(http_status_errno(412), -ESTALE);
	CHECK_INT(http_status_errno(416), -ERANGE);
	CHECK_INT(http_status_errno(429), -EAGAIN);
	CHECK_INT(http_status_errno(500), -EIO);
	CHECK_INT(http_status_errno(503), -EAGAIN);
	CHECK_INT(http_status_errno(504), -ETIMEDOUT);
	CHECK_INT(http_status_errno(418), -EIO);

	CHECK(http_status_retryable(408));
	CHECK(http_status_retryable(429));
	CHECK(http_status_retryable(500));
	CHECK(http_status_retryable(503));
	CHECK(!http_status_retryable(404));
	CHECK(!http_status_retryable(412));
	CHECK(!http_status_retryable(403));
	return check_summary();
}
