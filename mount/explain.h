/*
 * explain.h - `hylake explain PATH...`.  Returns the exit status.
 */
#ifndef HYLAKE_EXPLAIN_H
#define HYLAKE_EXPLAIN_H

int explain_main(int argc, char **argv);

#endif
