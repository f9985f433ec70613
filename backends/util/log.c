/*
 * log.c - leveled logging to stderr or syslog.
 */
#include "backends/util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int log_level = LOG_INFO;
static bool use_syslog;

static const struct { const char *name; int level; } level_names[] = {
	{ "err", LOG_ERR }, { "error", LOG_ERR },
	{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
	{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	{ "trace", LOG_TRACE },
};

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i].name) == 0)
			return level_names[i].level;
	return -1;
}

const char *log_level_name(int level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i].level == level)
			return level_names[i].name;
	return "?";
}

void log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	use_syslog = true;
}

void log_to_stderr(void)
{
	if (use_syslog)
		closelog();
	use_syslog = false;
}

void log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_syslog) {
		/* syslog has no level past debug: LOG_TRACE's value would
		 * read as another facility's emergency. */
		syslog(level > LOG_DEBUG ? LOG_DEBUG : level, "%s", line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld hylake %s: %s\n", stamp, ts.tv_nsec / 1000000,
		log_level_name(level), line);
}
