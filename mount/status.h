/*
 * status.h - `hylake status MOUNTPOINT [--prometheus]`: a mount's health
 * and figures, asked of its daemon through the user.hylake.metrics
 * attribute of the mount's root folder (no privileges needed).
 */
#ifndef HYLAKE_STATUS_H
#define HYLAKE_STATUS_H

/* argv: the arguments after "status".  Returns the exit status. */
int status_main(int argc, char **argv);

#endif
