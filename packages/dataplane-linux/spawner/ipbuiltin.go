package main

// The `ip -batch` lines of a CNI ADD and DEL, served here over netlink instead of by an `ip`
// process: starting `ip` costs ~2-3 ms, while its netlink work for an ADD is well under one. Only
// the spawner's own `ip` (the path given with -ip) is served, and only a call whose every line is
// in the subset below; anything else runs the real `ip`, so the caller never has to know which
// one answered. What comes back is what `ip` would have printed: the same stdout (`-json` link
// show), the same error lines (`Cannot find device "X"`, `RTNETLINK answers: …` or the kernel's
// own `Error: ….`), `Command failed -:N` per failing line, and exit codes 0, 1 (a line failed;
// with -force the rest still ran) or 255 (an argument `ip` refuses: it stops at once).
//
// The subset (tokens exactly as packages/dataplane-linux/src builds them):
//   link add name H [mtu M] [master B] [up] type veth peer name P [mtu M] [address MAC] [netns NS]
//   link set dev X (up | name Y | alias A | address MAC | type bridge_slave hairpin on)
//   link del dev X
//   link show dev X                         (with -json only)
//   addr (add | replace) CIDR dev X [nodad]
//   route (add | replace) (default | CIDR) [via GW] dev X
// Global options: -n NAME (or nsenter --net=PATH before ip), -json, -force, -batch -.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

const (
	iflaAddress     = 1
	iflaBroadcast   = 2
	iflaIfname      = 3
	iflaMtu         = 4
	iflaLink        = 5
	iflaQdisc       = 6
	iflaMaster      = 10
	iflaTxqlen      = 13
	iflaOperstate   = 16
	iflaLinkmode    = 17
	iflaLinkinfo    = 18
	iflaIfalias     = 20
	iflaGroup       = 27
	iflaNetNsFd     = 28
	iflaLinkNetnsid = 37
	infoKind        = 1
	infoData        = 2
	infoSlaveKind   = 4
	infoSlaveData   = 5
	vethInfoPeer    = 1
	brportMode      = 4
	ifaLocal        = 2
	ifaAddress      = 1
	rtaDst          = 1
	rtaOif          = 4
	rtaGateway      = 5
	iffLowerUp      = 1 << 16
	iffDormant      = 1 << 17
	iffEcho         = 1 << 18
	rtScopeLink     = 253
	maxIfName       = 15
)

// ipCall is one `ip -batch -` invocation the spawner can serve itself.
type ipCall struct {
	netns string // a namespace path; "" for the spawner's own
	json  bool
	force bool
	lines []ipLine // one per physical line; nil op for a blank one
}

type ipLine struct {
	op func(nl *rtnl, out *strings.Builder) lineResult
}

// lineResult: what a line did. fatal ends the batch with exit 255 and no `Command failed`.
type lineResult struct {
	failed bool
	fatal  bool
	stderr string
}

var ok = lineResult{}

func fail(format string, a ...interface{}) lineResult {
	return lineResult{failed: true, stderr: fmt.Sprintf(format, a...) + "\n"}
}

// kernelFail is how `ip` words a refusal from the kernel.
func kernelFail(err error) lineResult {
	if e, isNl := err.(*nlError); isNl {
		if e.msg != "" {
			return fail("Error: %s", withFullStop(e.msg))
		}
		return fail("RTNETLINK answers: %s", errnoText(e.errno))
	}
	return fail("%v", err)
}

func withFullStop(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

func warning(w string) lineResult {
	if w == "" {
		return ok
	}
	return lineResult{stderr: "Warning: " + withFullStop(w) + "\n"}
}

// parseIPCall recognises a call this file serves: false means "run the real ip".
func parseIPCall(r request, ipPath, nsenterPath string) (*ipCall, bool) {
	if ipPath == "" || r.Input == nil {
		return nil, false
	}
	args := r.Args
	call := &ipCall{}
	switch {
	case r.File == ipPath:
	case nsenterPath != "" && r.File == nsenterPath && len(args) >= 2 && strings.HasPrefix(args[0], "--net=") && args[1] == ipPath:
		call.netns = strings.TrimPrefix(args[0], "--net=")
		args = args[2:]
	default:
		return nil, false
	}
	for len(args) > 0 {
		switch args[0] {
		case "-json":
			call.json = true
		case "-force":
			call.force = true
		case "-n":
			if len(args) < 2 || call.netns != "" || !isPlainName(args[1]) {
				return nil, false
			}
			call.netns = "/var/run/netns/" + args[1]
			args = args[1:]
		case "-batch":
			if len(args) != 2 || args[1] != "-" {
				return nil, false
			}
			args = nil
			continue
		default:
			return nil, false
		}
		args = args[1:]
	}
	if call.netns != "" && !exists(call.netns) {
		return nil, false // `ip` says what is wrong with it in its own words
	}
	text := strings.TrimSuffix(*r.Input, "\n")
	for _, raw := range strings.Split(text, "\n") {
		toks := strings.Fields(raw)
		if len(toks) == 0 {
			call.lines = append(call.lines, ipLine{})
			continue
		}
		op, served := parseLine(toks, call.json)
		if !served {
			return nil, false
		}
		call.lines = append(call.lines, ipLine{op: op})
	}
	return call, true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isPlainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func isIfName(s string) bool {
	return len(s) > 0 && len(s) <= maxIfName && s != "." && s != ".." && !strings.ContainsAny(s, "/:\x00")
}

func parseLine(t []string, json bool) (func(*rtnl, *strings.Builder) lineResult, bool) {
	switch {
	case len(t) >= 4 && t[0] == "link" && t[1] == "add":
		return parseVethAdd(t[2:])
	case len(t) >= 5 && t[0] == "link" && t[1] == "set" && t[2] == "dev" && isIfName(t[3]):
		return parseLinkSet(t[3], t[4:])
	case len(t) == 4 && t[0] == "link" && t[1] == "del" && t[2] == "dev" && isIfName(t[3]):
		return linkDel(t[3]), true
	case json && len(t) == 4 && t[0] == "link" && t[1] == "show" && t[2] == "dev" && isIfName(t[3]):
		return linkShow(t[3]), true
	case len(t) >= 5 && t[0] == "addr" && (t[1] == "add" || t[1] == "replace"):
		return parseAddr(t[1] == "replace", t[2:])
	case len(t) >= 5 && t[0] == "route" && (t[1] == "add" || t[1] == "replace"):
		return parseRoute(t[1] == "replace", t[2:])
	}
	return nil, false
}

// ---------------------------------------------------------------------------------------------
// link
// ---------------------------------------------------------------------------------------------

type linkEnd struct {
	name  string
	mtu   uint32
	mac   net.HardwareAddr
	netns string
}

// parseEnd reads `name N [mtu M] [address MAC] [netns NS]`-style options into e, stopping at the
// first token it does not know; returns the rest.
func parseEnd(e *linkEnd, t []string, master *string, up *bool) ([]string, bool) {
	for len(t) > 0 {
		switch t[0] {
		case "name":
			if len(t) < 2 || !isIfName(t[1]) || e.name != "" {
				return nil, false
			}
			e.name = t[1]
		case "mtu":
			if len(t) < 2 {
				return nil, false
			}
			v, err := strconv.ParseUint(t[1], 10, 32)
			if err != nil {
				return nil, false
			}
			e.mtu = uint32(v)
		case "address":
			if len(t) < 2 {
				return nil, false
			}
			mac, err := net.ParseMAC(t[1])
			if err != nil || len(mac) != 6 {
				return nil, false
			}
			e.mac = mac
		case "netns":
			if len(t) < 2 {
				return nil, false
			}
			ns := t[1]
			if !strings.Contains(ns, "/") {
				if !isPlainName(ns) || isNumber(ns) {
					return nil, false // a pid: not served
				}
				ns = "/var/run/netns/" + ns
			}
			if !exists(ns) {
				return nil, false
			}
			e.netns = ns
		case "master":
			if master == nil || len(t) < 2 || !isIfName(t[1]) {
				return nil, false
			}
			*master = t[1]
		case "up":
			if up == nil {
				return nil, false
			}
			*up = true
			t = t[1:]
			continue
		default:
			return t, true
		}
		t = t[2:]
	}
	return t, true
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func parseVethAdd(t []string) (func(*rtnl, *strings.Builder) lineResult, bool) {
	var host, peer linkEnd
	var master string
	up := false
	rest, good := parseEnd(&host, t, &master, &up)
	if !good || host.name == "" || host.netns != "" || len(rest) < 2 || rest[0] != "type" || rest[1] != "veth" {
		return nil, false
	}
	rest = rest[2:]
	if len(rest) > 0 {
		if rest[0] != "peer" {
			return nil, false
		}
		if rest, good = parseEnd(&peer, rest[1:], nil, nil); !good || len(rest) != 0 || peer.name == "" {
			return nil, false
		}
	} else {
		return nil, false // the kernel would name the peer: not a line isthmus writes
	}
	return func(nl *rtnl, _ *strings.Builder) lineResult {
		attrs := endAttrs(host)
		var flags uint32
		if up {
			flags = syscall.IFF_UP
		}
		if master != "" {
			idx, err := nl.index(master)
			if err != nil {
				if isNoDevice(err) {
					return lineResult{fatal: true, stderr: fmt.Sprintf("Error: argument %q is wrong: Device does not exist\n\n", master)}
				}
				return kernelFail(err)
			}
			attrs = append(attrs, u32Attr(iflaMaster, uint32(idx)))
		}
		peerAttrs := endAttrs(peer)
		if peer.netns != "" {
			fd, err := syscall.Open(peer.netns, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				return lineResult{fatal: true, stderr: fmt.Sprintf("Error: argument %q is wrong: Invalid \"netns\" value\n\n", peer.netns)}
			}
			defer syscall.Close(fd)
			peerAttrs = append(peerAttrs, u32Attr(iflaNetNsFd, uint32(fd)))
		}
		peerBody := append(ifinfo(syscall.AF_UNSPEC, 0, 0, 0), encodeAttrs(peerAttrs)...)
		attrs = append(attrs, nested(iflaLinkinfo, strAttr(infoKind, "veth"),
			nested(infoData, bytesAttr(vethInfoPeer, peerBody))))
		_, w, err := nl.talk(syscall.RTM_NEWLINK, syscall.NLM_F_ACK|syscall.NLM_F_CREATE|syscall.NLM_F_EXCL,
			ifinfo(syscall.AF_UNSPEC, 0, flags, flags), attrs...)
		if err != nil {
			return kernelFail(err)
		}
		return warning(w)
	}, true
}

func endAttrs(e linkEnd) []attr {
	as := []attr{strAttr(iflaIfname, e.name)}
	if e.mtu != 0 {
		as = append(as, u32Attr(iflaMtu, e.mtu))
	}
	if e.mac != nil {
		as = append(as, bytesAttr(iflaAddress, e.mac))
	}
	return as
}

func parseLinkSet(dev string, t []string) (func(*rtnl, *strings.Builder) lineResult, bool) {
	var flags, change uint32
	var attrs []attr
	switch {
	case len(t) == 1 && t[0] == "up":
		flags, change = syscall.IFF_UP, syscall.IFF_UP
	case len(t) == 2 && t[0] == "name" && isIfName(t[1]):
		attrs = []attr{strAttr(iflaIfname, t[1])}
	case len(t) == 2 && t[0] == "alias":
		attrs = []attr{bytesAttr(iflaIfalias, []byte(t[1]))}
	case len(t) == 2 && t[0] == "address":
		mac, err := net.ParseMAC(t[1])
		if err != nil || len(mac) != 6 {
			return nil, false
		}
		attrs = []attr{bytesAttr(iflaAddress, mac)}
	case len(t) == 4 && t[0] == "type" && t[1] == "bridge_slave" && t[2] == "hairpin" && t[3] == "on":
		attrs = []attr{nested(iflaLinkinfo, strAttr(infoSlaveKind, "bridge"),
			nested(infoSlaveData, u8Attr(brportMode, 1)))}
	default:
		return nil, false
	}
	return onDevice(dev, func(nl *rtnl, idx int32) (string, error) {
		_, w, err := nl.talk(syscall.RTM_NEWLINK, syscall.NLM_F_ACK, ifinfo(syscall.AF_UNSPEC, idx, flags, change), attrs...)
		return w, err
	}), true
}

func linkDel(dev string) func(*rtnl, *strings.Builder) lineResult {
	return onDevice(dev, func(nl *rtnl, idx int32) (string, error) {
		_, w, err := nl.talk(syscall.RTM_DELLINK, syscall.NLM_F_ACK, ifinfo(syscall.AF_UNSPEC, idx, 0, 0))
		return w, err
	})
}

func linkShow(dev string) func(*rtnl, *strings.Builder) lineResult {
	return func(nl *rtnl, out *strings.Builder) lineResult {
		msg, err := nl.getLink(dev, 0)
		if err != nil {
			if isNoDevice(err) {
				return fail("Device %q does not exist.", dev)
			}
			return kernelFail(err)
		}
		out.WriteString("[")
		out.WriteString(linkJSON(nl, msg))
		out.WriteString("]\n")
		return ok
	}
}

// deviceIndex resolves dev as `ip` does before a command: a missing one is `Cannot find device`.
func deviceIndex(nl *rtnl, dev string) (int32, lineResult, bool) {
	idx, err := nl.index(dev)
	if err == nil {
		return idx, ok, true
	}
	if isNoDevice(err) {
		return 0, fail("Cannot find device %q", dev), false
	}
	return 0, kernelFail(err), false
}

// onDevice is a line that acts on one existing device: resolved first, as `ip` does.
func onDevice(dev string, act func(nl *rtnl, index int32) (string, error)) func(*rtnl, *strings.Builder) lineResult {
	return func(nl *rtnl, _ *strings.Builder) lineResult {
		idx, res, found := deviceIndex(nl, dev)
		if !found {
			return res
		}
		w, err := act(nl, idx)
		if err != nil {
			return kernelFail(err)
		}
		return warning(w)
	}
}

// createFlags: `replace` creates or replaces, `add` creates only.
func createFlags(replace bool) uint16 {
	if replace {
		return syscall.NLM_F_ACK | syscall.NLM_F_CREATE | syscall.NLM_F_REPLACE
	}
	return syscall.NLM_F_ACK | syscall.NLM_F_CREATE | syscall.NLM_F_EXCL
}

func isNoDevice(err error) bool {
	e, isNl := err.(*nlError)
	return isNl && e.errno == syscall.ENODEV
}

// getLink asks for one link by name (index 0) or by index.
func (nl *rtnl) getLink(name string, index int32) ([]byte, error) {
	var attrs []attr
	if name != "" {
		attrs = append(attrs, strAttr(iflaIfname, name))
	}
	replies, _, err := nl.talk(syscall.RTM_GETLINK, 0, ifinfo(syscall.AF_UNSPEC, index, 0, 0), attrs...)
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		if r.typ == syscall.RTM_NEWLINK && len(r.data) >= 16 {
			return r.data, nil
		}
	}
	return nil, &nlError{errno: syscall.ENODEV}
}

func (nl *rtnl) index(name string) (int32, error) {
	msg, err := nl.getLink(name, 0)
	if err != nil {
		return 0, err
	}
	return int32(native.Uint32(msg[4:])), nil
}

// ---------------------------------------------------------------------------------------------
// addr, route
// ---------------------------------------------------------------------------------------------

func parseAddr(replace bool, t []string) (func(*rtnl, *strings.Builder) lineResult, bool) {
	ip, ipnet, err := net.ParseCIDR(t[0])
	if err != nil || t[1] != "dev" || !isIfName(t[2]) || ip.IsLoopback() {
		return nil, false
	}
	dev := t[2]
	var ifaFlags uint8
	switch {
	case len(t) == 3:
	case len(t) == 4 && t[3] == "nodad":
		ifaFlags = syscall.IFA_F_NODAD
	default:
		return nil, false
	}
	family, raw := familyOf(ip)
	prefix, _ := ipnet.Mask.Size()
	return onDevice(dev, func(nl *rtnl, idx int32) (string, error) {
		_, w, err := nl.talk(syscall.RTM_NEWADDR, createFlags(replace), ifaddr(family, uint8(prefix), ifaFlags, 0, idx),
			bytesAttr(ifaLocal, raw), bytesAttr(ifaAddress, raw))
		return w, err
	}), true
}

func familyOf(ip net.IP) (uint8, []byte) {
	if v4 := ip.To4(); v4 != nil {
		return syscall.AF_INET, v4
	}
	return syscall.AF_INET6, ip.To16()
}

func parseRoute(replace bool, t []string) (func(*rtnl, *strings.Builder) lineResult, bool) {
	dst := t[0]
	t = t[1:]
	var gw net.IP
	if len(t) >= 2 && t[0] == "via" {
		if gw = net.ParseIP(t[1]); gw == nil {
			return nil, false
		}
		t = t[2:]
	}
	if len(t) != 2 || t[0] != "dev" || !isIfName(t[1]) {
		return nil, false
	}
	dev := t[1]
	var family uint8
	var dstRaw []byte
	dstLen := 0
	if dst == "default" {
		if gw == nil {
			return nil, false // its family would be a guess
		}
		family, _ = familyOf(gw)
	} else {
		ip, ipnet, err := net.ParseCIDR(dst)
		if err != nil || !ip.Equal(ipnet.IP) {
			return nil, false // host bits set: `ip` refuses it in its own words
		}
		family, dstRaw = familyOf(ipnet.IP)
		dstLen, _ = ipnet.Mask.Size()
	}
	var gwRaw []byte
	if gw != nil {
		var gwFamily uint8
		gwFamily, gwRaw = familyOf(gw)
		if gwFamily != family {
			return nil, false
		}
	}
	scope := uint8(0)
	if gw == nil {
		scope = rtScopeLink
	}
	return onDevice(dev, func(nl *rtnl, idx int32) (string, error) {
		attrs := []attr{}
		if dstLen > 0 || dstRaw != nil {
			attrs = append(attrs, bytesAttr(rtaDst, dstRaw))
		}
		if gwRaw != nil {
			attrs = append(attrs, bytesAttr(rtaGateway, gwRaw))
		}
		attrs = append(attrs, u32Attr(rtaOif, uint32(idx)))
		_, w, err := nl.talk(syscall.RTM_NEWROUTE, createFlags(replace),
			rtmsg(family, uint8(dstLen), syscall.RT_TABLE_MAIN, syscall.RTPROT_BOOT, scope, syscall.RTN_UNICAST), attrs...)
		return w, err
	}), true
}

// ---------------------------------------------------------------------------------------------
// running a call
// ---------------------------------------------------------------------------------------------

// runIPCall runs the lines as `ip -batch` would; served is false when the namespace could not be
// entered before anything ran (the caller then runs the real `ip`, which says why). A thread that
// could not come back from the namespace answers an error instead: nothing more runs on it.
func runIPCall(c *ipCall) (answer, bool) {
	nl, err := openRtnlIn(c.netns)
	if stuck, isStuck := err.(*stuckError); isStuck {
		return answer{Error: stuck.Error()}, true
	}
	if err != nil {
		return answer{}, false
	}
	defer nl.close()
	var stdout, stderr strings.Builder
	code := 0
	for i, l := range c.lines {
		if l.op == nil {
			continue
		}
		res := l.op(nl, &stdout)
		stderr.WriteString(res.stderr)
		if res.fatal {
			code = 255
			break
		}
		if res.failed {
			fmt.Fprintf(&stderr, "Command failed -:%d\n", i+1)
			code = 1
			if !c.force {
				break
			}
		}
	}
	out, errText := stdout.String(), stderr.String()
	return answer{Stdout: &out, Stderr: &errText, ExitCode: &code}, true
}
