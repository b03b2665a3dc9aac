#!/usr/bin/python3
"""A level on a filesystem that can stop answering: a FUSE passthrough of a directory.

    /usr/bin/python3 Scripts/fuse-level.py BACKING MOUNTPOINT [--hold-directory-fsync-while FILE]
                                           [--hold-lock-file-open-while FILE] [--hold-root-listing-while FILE]

Mounts BACKING at MOUNTPOINT and serves it until unmounted (or SIGTERM). Nothing is cached in the
kernel (attributes and names are asked every time), so while this process is stopped (SIGSTOP)
every access to MOUNTPOINT waits, as on a hard NFS mount whose server is gone; SIGCONT answers
them. The tests use it to hang a level under a running worker. With --hold-directory-fsync-while,
a directory's fsync waits for as long as FILE exists, and everything else answers: a device whose
writeback stalls while what is cached still answers. With --hold-lock-file-open-while, an open of
the level's lock file (.relocator/lock) waits for as long as FILE exists: a disk that stops
answering right as a content's lock is taken. With --hold-root-listing-while, a listing of the
level directory itself waits for as long as FILE exists (a walk of the level that stops at its
first directory). Needs Debian's python3-fusepy
(Scripts/setup installs it), hence the system interpreter.
"""

import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class Passthrough(Operations):
    LOCK_FILE = "/.relocator/lock"

    def __init__(self, root, hold_directory_fsync=None, hold_lock_file_open=None, hold_root_listing=None):
        self.root = os.path.realpath(root)
        self.hold_directory_fsync = hold_directory_fsync
        self.hold_lock_file_open = hold_lock_file_open
        self.hold_root_listing = hold_root_listing

    def _hold_lock_file(self, path):
        while path == self.LOCK_FILE and self.hold_lock_file_open and os.path.exists(self.hold_lock_file_open):
            time.sleep(0.02)

    def _full(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def access(self, path, amode):
        if not os.access(self._full(path), amode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._full(path), mode)

    def chown(self, path, uid, gid):
        os.lchown(self._full(path), uid, gid)

    def getattr(self, path, fh=None):
        status = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
        return {key: getattr(status, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                                                      "st_size", "st_uid", "st_ino", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")}

    def readdir(self, path, fh):
        while path == "/" and self.hold_root_listing and os.path.exists(self.hold_root_listing):
            time.sleep(0.02)
        return [".", ".."] + os.listdir(self._full(path))

    def readlink(self, path):
        return os.readlink(self._full(path))

    def mknod(self, path, mode, dev):
        os.mknod(self._full(path), mode, dev)

    def mkdir(self, path, mode):
        os.mkdir(self._full(path), mode)

    def rmdir(self, path):
        os.rmdir(self._full(path))

    def unlink(self, path):
        os.unlink(self._full(path))

    def symlink(self, name, target):
        os.symlink(target, self._full(name))

    def rename(self, old, new):
        os.rename(self._full(old), self._full(new))

    def link(self, target, name):
        os.link(self._full(name), self._full(target))

    def utimens(self, path, times=None):
        os.utime(self._full(path), times, follow_symlinks=False)

    def statfs(self, path):
        info = os.statvfs(self._full(path))
        return {key: getattr(info, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                                    "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):
        self._hold_lock_file(path)
        return os.open(self._full(path), flags)

    def create(self, path, mode, fi=None):
        self._hold_lock_file(path)
        return os.open(self._full(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._full(path), length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def fsync(self, path, datasync, fh):
        (os.fdatasync if datasync else os.fsync)(fh)

    def fsyncdir(self, path, datasync, fh):
        while self.hold_directory_fsync and os.path.exists(self.hold_directory_fsync):
            time.sleep(0.02)
        fd = os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def main(argv):
    usage = ("usage: fuse-level.py BACKING MOUNTPOINT [--hold-directory-fsync-while FILE] [--hold-lock-file-open-while FILE] "
             "[--hold-root-listing-while FILE]")
    holds = {"--hold-directory-fsync-while": None, "--hold-lock-file-open-while": None, "--hold-root-listing-while": None}
    if len(argv) < 2 or len(argv) % 2:
        sys.exit(usage)
    for option, value in zip(argv[2::2], argv[3::2]):
        if option not in holds:
            sys.exit(usage)
        holds[option] = value
    # use_ino: the backing files' inode numbers (a hard link is one file); hard_remove: an open file
    # unlinked is gone, not renamed to .fuse_hidden*; no timeouts: every lookup reaches this process.
    FUSE(Passthrough(argv[0], holds["--hold-directory-fsync-while"], holds["--hold-lock-file-open-while"], holds["--hold-root-listing-while"]), argv[1], foreground=True, nothreads=False, use_ino=True, hard_remove=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="relocator-test-level")


if __name__ == "__main__":
    main(sys.argv[1:])
