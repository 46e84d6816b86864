package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// socketCheck is trustedSocket's verdict: ok with the path to connect to, or why not (absent:
// the socket or a directory on its way does not exist, the ordinary "no daemon" case).
type socketCheck struct {
	ok     bool
	path   string
	why    string
	absent bool
}

// trustedSocket applies the checks of @isthmus/handoff's trustedSocket before anything is sent:
// the path is resolved (symbolic links included) and must be a socket owned by root (or by
// this process's user) and writable by nobody else, in directories owned by such users and not
// writable by group or others unless sticky. Otherwise another user could stand in for the
// daemon (and read the call's credentials) or swap the socket between this check and the
// connect. Connect to the returned path, the one that was checked.
func trustedSocket(socket string, euid int) socketCheck {
	abs, err := filepath.Abs(socket)
	if err != nil {
		return socketCheck{why: fmt.Sprintf("%s: %s", socket, errnoText(err))}
	}
	path, err := filepath.EvalSymlinks(abs)
	if err != nil {
		absent := errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
		return socketCheck{why: fmt.Sprintf("%s: %s", socket, errnoText(err)), absent: absent}
	}
	trusted := func(uid uint32) bool { return uid == 0 || int64(uid) == int64(euid) }
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return socketCheck{why: fmt.Sprintf("%s: %s", path, errnoText(err))}
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFSOCK:
		return socketCheck{why: path + " is not a socket"}
	case !trusted(st.Uid):
		return socketCheck{why: fmt.Sprintf("%s is owned by uid %d, not root", path, st.Uid)}
	case st.Mode&0o022 != 0:
		return socketCheck{why: fmt.Sprintf("%s is writable by group or others (mode %o)", path, st.Mode&0o777)}
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if err := syscall.Lstat(dir, &st); err != nil {
			return socketCheck{why: fmt.Sprintf("%s: %s", dir, errnoText(err))}
		}
		if !trusted(st.Uid) {
			return socketCheck{why: fmt.Sprintf("directory %s is owned by uid %d, not root", dir, st.Uid)}
		}
		if st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0 {
			return socketCheck{
				why: fmt.Sprintf("directory %s is writable by group or others (mode %o) and not sticky", dir, st.Mode&0o777),
			}
		}
		if dir == "/" {
			break
		}
	}
	return socketCheck{ok: true, path: path}
}

// errnoText is the system's words for err's errno ("connection refused"), else err's text.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
