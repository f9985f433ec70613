"""A read-only FUSE passthrough that can freeze: a dead NFS server on demand.

    python3 freezefs.py BACKING MOUNTPOINT FLAGFILE

Serves BACKING at MOUNTPOINT (files, folders, xattrs).  While FLAGFILE
exists every request blocks, as on a hard-mounted NFS whose server is gone;
removing it lets them all go on.  No kernel caching (direct_io, zero
timeouts), so a frozen folder cannot answer from the page cache.  Needs
python3-fusepy (Debian's name for the module is `fusepy`)."""

import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class Freezable(Operations):
    def __init__(self, root, flag):
        self.root, self.flag = root, flag

    def __call__(self, op, path, *args):
        while os.path.exists(self.flag):
            time.sleep(0.02)
        if not hasattr(self, op):
            raise FuseOSError(errno.ENOSYS)
        try:
            return getattr(self, op)(self.root + path, *args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    def getattr(self, path, fh=None):
        st = os.lstat(path)
        return {k: getattr(st, k) for k in (
            "st_mode", "st_nlink", "st_size", "st_uid", "st_gid",
            "st_atime", "st_mtime", "st_ctime")}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(path)

    def open(self, path, flags):
        return os.open(path, os.O_RDONLY)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def getxattr(self, path, name, position=0):
        return os.getxattr(path, name)

    def listxattr(self, path):
        return os.listxattr(path)

    def access(self, path, mode):
        if not os.access(path, mode):
            raise FuseOSError(errno.EACCES)
        return 0

    def statfs(self, path):
        sv = os.statvfs(path)
        return {k: getattr(sv, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
            "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}


if __name__ == "__main__":
    backing, mnt, flag = sys.argv[1:4]
    FUSE(Freezable(os.path.abspath(backing), os.path.abspath(flag)), mnt,
         foreground=True, nothreads=False, ro=True, direct_io=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0)
