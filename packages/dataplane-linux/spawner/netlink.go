package main

// A minimal rtnetlink client (NETLINK_ROUTE), standard library only: requests built from
// attributes, answered by the kernel's ack or a reply message. Enough for the `ip` lines
// ipbuiltin.go serves; see there for why the spawner speaks netlink at all.

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

const (
	solNetlink     = 270 // SOL_NETLINK
	netlinkCapAck  = 10  // NETLINK_CAP_ACK: an error ack carries the request's header only
	netlinkExtAck  = 11  // NETLINK_EXT_ACK: and the kernel's message about the error
	nlmFAckTlvs    = 0x200
	nlmsgerrAttrMs = 1 // NLMSGERR_ATTR_MSG
	nlaFNested     = 0x8000
	nlmsgHdrLen    = 16
)

// Netlink is in host byte order; the spawner is built for amd64 and arm64 (sysnum_*.go), both
// little-endian.
var native = binary.LittleEndian

// attr is one rtattr; nested attributes carry children instead of data.
type attr struct {
	typ      uint16
	data     []byte
	children []attr
}

func align4(n int) int { return (n + 3) &^ 3 }

func (a attr) encode() []byte {
	body := a.data
	if a.children != nil {
		body = encodeAttrs(a.children)
	}
	b := make([]byte, align4(4+len(body)))
	native.PutUint16(b[0:], uint16(4+len(body)))
	native.PutUint16(b[2:], a.typ)
	copy(b[4:], body)
	return b
}

func encodeAttrs(as []attr) []byte {
	var out []byte
	for _, a := range as {
		out = append(out, a.encode()...)
	}
	return out
}

func strAttr(typ uint16, s string) attr { return attr{typ: typ, data: append([]byte(s), 0)} }
func u32Attr(typ uint16, v uint32) attr {
	b := make([]byte, 4)
	native.PutUint32(b, v)
	return attr{typ: typ, data: b}
}
func u8Attr(typ uint16, v uint8) attr     { return attr{typ: typ, data: []byte{v}} }
func nested(typ uint16, as ...attr) attr  { return attr{typ: typ, children: as} }
func bytesAttr(typ uint16, b []byte) attr { return attr{typ: typ, data: b} }

// parseAttrs splits a run of attributes; the nested flag is masked off the type.
func parseAttrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		l := int(native.Uint16(b[0:]))
		t := native.Uint16(b[2:]) &^ nlaFNested
		if l < 4 || l > len(b) {
			break
		}
		out[t] = b[4:l]
		b = b[min(align4(l), len(b)):]
	}
	return out
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ifinfomsg, ifaddrmsg and rtmsg, as the kernel lays them out.
func ifinfo(family uint8, index int32, flags, change uint32) []byte {
	b := make([]byte, 16)
	b[0] = family
	native.PutUint32(b[4:], uint32(index))
	native.PutUint32(b[8:], flags)
	native.PutUint32(b[12:], change)
	return b
}

func ifaddr(family, prefixlen, flags, scope uint8, index int32) []byte {
	b := make([]byte, 8)
	b[0], b[1], b[2], b[3] = family, prefixlen, flags, scope
	native.PutUint32(b[4:], uint32(index))
	return b
}

func rtmsg(family, dstLen, table, protocol, scope, typ uint8) []byte {
	return []byte{family, dstLen, 0, 0, table, protocol, scope, typ, 0, 0, 0, 0}
}

// nlError is the kernel's refusal: its errno and, when it gave one, its own sentence.
type nlError struct {
	errno syscall.Errno
	msg   string
}

func (e *nlError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return errnoText(e.errno)
}

// errnoText is glibc's strerror wording, which `ip` prints: Go's table is the same text with a
// lower-case first letter.
func errnoText(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

type rtnl struct {
	fd  int
	seq uint32
	buf []byte
}

func openRtnl() (*rtnl, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Both are best effort, as for iproute2: without them an error is still an errno.
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkCapAck, 1)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkExtAck, 1)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	return &rtnl{fd: fd, buf: make([]byte, 64<<10)}, nil
}

// openRtnlIn opens the socket inside the network namespace at path: a netlink socket belongs to
// the namespace it was made in, so only this thread visits it, for the socket() call.
func openRtnlIn(path string) (*rtnl, error) {
	if path == "" {
		return openRtnl()
	}
	target, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(target)
	runtime.LockOSThread()
	own, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, &os.PathError{Op: "open", Path: "/proc/thread-self/ns/net", Err: err}
	}
	defer syscall.Close(own)
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", path, err)
	}
	r, openErr := openRtnl()
	if err := setns(own); err != nil {
		// This thread stays in the other namespace: it stays locked, and Go ends it with the
		// goroutine rather than hand it to other work. Nothing else may run on it (a command
		// started from it would run in that namespace): the caller answers with an error.
		if r != nil {
			r.close()
		}
		return nil, &stuckError{fmt.Errorf("setns back from %s: %w", path, err)}
	}
	runtime.UnlockOSThread()
	return r, openErr
}

// stuckError: the calling thread could not leave the namespace it entered.
type stuckError struct{ error }

func setns(fd int) error {
	if _, _, e := syscall.RawSyscall(sysSetns, uintptr(fd), syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

func (r *rtnl) close() { syscall.Close(r.fd) }

// talk sends one request and returns the reply messages' bodies (type, payload), up to the ack
// or the single answer of a non-dump get. A warning the kernel attached to a success comes back
// in warn.
func (r *rtnl) talk(typ, flags uint16, body []byte, attrs ...attr) (replies []reply, warn string, err error) {
	r.seq++
	payload := append(append([]byte{}, body...), encodeAttrs(attrs)...)
	msg := make([]byte, nlmsgHdrLen+len(payload))
	native.PutUint32(msg[0:], uint32(len(msg)))
	native.PutUint16(msg[4:], typ)
	native.PutUint16(msg[6:], flags|syscall.NLM_F_REQUEST)
	native.PutUint32(msg[8:], r.seq)
	copy(msg[nlmsgHdrLen:], payload)
	if err := syscall.Sendto(r.fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, "", os.NewSyscallError("sendto", err)
	}
	wantAck := flags&syscall.NLM_F_ACK != 0
	for {
		n, _, err := syscall.Recvfrom(r.fd, r.buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, "", os.NewSyscallError("recvfrom", err)
		}
		b := r.buf[:n]
		for len(b) >= nlmsgHdrLen {
			l := int(native.Uint32(b[0:]))
			if l < nlmsgHdrLen || l > len(b) {
				return nil, "", fmt.Errorf("netlink: truncated message")
			}
			mtyp, mflags, seq := native.Uint16(b[4:]), native.Uint16(b[6:]), native.Uint32(b[8:])
			data := b[nlmsgHdrLen:l]
			b = b[min(align4(l), len(b)):]
			if seq != r.seq {
				continue
			}
			if mtyp == syscall.NLMSG_ERROR {
				if len(data) < 4 {
					return nil, "", fmt.Errorf("netlink: short error message")
				}
				code := int32(native.Uint32(data[0:]))
				text := ackMessage(data, mflags)
				if code != 0 {
					return nil, "", &nlError{errno: syscall.Errno(-code), msg: text}
				}
				return replies, text, nil
			}
			replies = append(replies, reply{typ: mtyp, data: append([]byte{}, data...)})
			if !wantAck {
				return replies, "", nil
			}
		}
	}
}

type reply struct {
	typ  uint16
	data []byte
}

// ackMessage reads NLMSGERR_ATTR_MSG from an ack (its request echoed as a header only: CAP_ACK).
func ackMessage(data []byte, flags uint16) string {
	if flags&nlmFAckTlvs == 0 || len(data) < 4+nlmsgHdrLen {
		return ""
	}
	echoed := int(native.Uint32(data[4:]))
	off := 4 + nlmsgHdrLen
	if flags&0x100 == 0 { // NLM_F_CAPPED unset: the whole request was echoed
		off = 4 + align4(echoed)
	}
	if off > len(data) {
		return ""
	}
	m, ok := parseAttrs(data[off:])[nlmsgerrAttrMs]
	if !ok {
		return ""
	}
	return strings.TrimRight(string(m), "\x00")
}
