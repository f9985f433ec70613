/*
 * cli.h - entry points of the two binaries.  Each returns the process
 * exit status.
 */
#ifndef HYLAKE_CLI_H
#define HYLAKE_CLI_H

int cli_main(int argc, char **argv);            /* hylake */
int mount_helper_main(int argc, char **argv);   /* mount.hylake */

#endif
