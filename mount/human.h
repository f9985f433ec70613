/*
 * human.h - figures for people: byte counts with binary units.
 */
#ifndef HYLAKE_HUMAN_H
#define HYLAKE_HUMAN_H

#include <stddef.h>

/* "512 B", "1.5 KiB", "18.0 MiB", "2.3 GiB" ... into buf (len bytes). */
void human_bytes(double bytes, char *buf, size_t len);

#endif
