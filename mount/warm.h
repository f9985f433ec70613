/*
 * warm.h - `hylake warm PATH... [--jobs N]`: read files of a mount (a
 * folder: every file beneath it) so their blocks land in the block cache,
 * with progress on a terminal.
 */
#ifndef HYLAKE_WARM_H
#define HYLAKE_WARM_H

/* argv: the arguments after "warm".  Returns the exit status. */
int warm_main(int argc, char **argv);

#endif
