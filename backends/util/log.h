/*
 * log.h - the one logger.
 *
 * Levels are syslog's, plus LOG_TRACE below debug (every call between
 * the layers; sent to syslog as debug).  Messages go to stderr
 * (foreground) or syslog (daemon).  The HY_LOG macro checks the level before it evaluates its
 * arguments, so a disabled debug line costs one comparison.
 *
 * Never pass credentials, tokens, signatures or Authorization headers.
 * Thread safe: each message is written with one call.
 */
#ifndef HYLAKE_LOG_H
#define HYLAKE_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* One level below LOG_DEBUG (7): numerically above it, as syslog counts. */
#define LOG_TRACE (LOG_DEBUG + 1)

extern int log_level;   /* messages above this level are dropped */

/* Parse "err", "warning", "notice", "info", "debug", "trace" (and "error",
 * "warn").
 * Returns the level or -1. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

/* Switch output to syslog with the given identity (after daemonizing). */
void log_to_syslog(const char *ident);
void log_to_stderr(void);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define HY_LOG(level, ...) \
	do { if ((level) <= log_level) log_msg((level), __VA_ARGS__); } while (0)
#define log_err(...)    HY_LOG(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   HY_LOG(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) HY_LOG(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   HY_LOG(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  HY_LOG(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...)  HY_LOG(LOG_TRACE, __VA_ARGS__)

#endif
