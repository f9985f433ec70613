/* mount.hylake: the mount(8) helper. */
#include "mount/cli.h"

int main(int argc, char **argv)
{
	return mount_helper_main(argc, argv);
}
