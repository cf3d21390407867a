#ifndef INVITES_COMMON_FILE_H
#define INVITES_COMMON_FILE_H

/*
 * Opening a FIFO for reading waits for a writer, forever if none comes, and
 * a FIFO at a configured path would freeze the daemon or the CLI: open
 * without waiting, then refuse anything but a regular file. Returns the fd
 * (blocking, close-on-exec), or -1 with errno set, or -2 for a file that is
 * not a regular one.
 */
int open_regular(const char *path);

#endif
