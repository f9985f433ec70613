/*
 * replicate.h - `hylake replicate`, the reference replicator.
 */
#ifndef HYLAKE_REPLICATE_H
#define HYLAKE_REPLICATE_H

/* argv holds the arguments after "replicate".  Returns the exit code. */
int replicate_main(int argc, char **argv);

#endif
