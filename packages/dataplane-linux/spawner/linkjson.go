package main

// One link as `ip -json link show` prints it (iproute2 6.1): the keys isthmus reads and the
// plain ones around them. Not printed: `M-DOWN` among the flags, xdp, altnames, -details.

import (
	"encoding/json"
	"net"
	"strings"
	"syscall"
)

var flagNames = []struct {
	bit  uint32
	name string
}{
	{syscall.IFF_LOOPBACK, "LOOPBACK"}, {syscall.IFF_BROADCAST, "BROADCAST"},
	{syscall.IFF_POINTOPOINT, "POINTOPOINT"}, {syscall.IFF_MULTICAST, "MULTICAST"},
	{syscall.IFF_NOARP, "NOARP"}, {syscall.IFF_ALLMULTI, "ALLMULTI"}, {syscall.IFF_PROMISC, "PROMISC"},
	{syscall.IFF_MASTER, "MASTER"}, {syscall.IFF_SLAVE, "SLAVE"}, {syscall.IFF_DEBUG, "DEBUG"},
	{syscall.IFF_DYNAMIC, "DYNAMIC"}, {syscall.IFF_AUTOMEDIA, "AUTOMEDIA"}, {syscall.IFF_PORTSEL, "PORTSEL"},
	{syscall.IFF_NOTRAILERS, "NOTRAILERS"}, {syscall.IFF_UP, "UP"}, {iffLowerUp, "LOWER_UP"},
	{iffDormant, "DORMANT"}, {iffEcho, "ECHO"},
}

var operStates = []string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}

// jsonObject keeps its keys in the order they were set, as ip prints them.
type jsonObject struct{ parts []string }

func (o *jsonObject) set(k string, v interface{}) {
	kb, _ := json.Marshal(k)
	vb, _ := json.Marshal(v)
	o.parts = append(o.parts, string(kb)+":"+string(vb))
}

func (o *jsonObject) String() string { return "{" + strings.Join(o.parts, ",") + "}" }

func cstring(b []byte) string { return strings.TrimRight(string(b), "\x00") }

func linkJSON(nl *rtnl, msg []byte) string {
	ifiType := native.Uint16(msg[2:])
	index := int32(native.Uint32(msg[4:]))
	flags := native.Uint32(msg[8:])
	a := parseAttrs(msg[16:])
	o := &jsonObject{}
	o.set("ifindex", index)
	nsid, otherNs := a[iflaLinkNetnsid]
	if l, has := a[iflaLink]; has && len(l) >= 4 && !otherNs {
		peer := int32(native.Uint32(l))
		if peer == 0 {
			o.set("link", nil)
		} else if name := nameOf(nl, peer); name != "" {
			o.set("link", name)
		}
	}
	o.set("ifname", cstring(a[iflaIfname]))
	names := []string{}
	if flags&syscall.IFF_UP != 0 && flags&syscall.IFF_RUNNING == 0 {
		names = append(names, "NO-CARRIER")
	}
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	o.set("flags", names)
	if v, has := a[iflaMtu]; has && len(v) >= 4 {
		o.set("mtu", native.Uint32(v))
	}
	if v, has := a[iflaQdisc]; has {
		o.set("qdisc", cstring(v))
	}
	if v, has := a[iflaMaster]; has && len(v) >= 4 {
		if name := nameOf(nl, int32(native.Uint32(v))); name != "" {
			o.set("master", name)
		}
	}
	if v, has := a[iflaOperstate]; has && len(v) >= 1 && int(v[0]) < len(operStates) {
		o.set("operstate", operStates[v[0]])
	}
	if v, has := a[iflaLinkmode]; has && len(v) >= 1 {
		o.set("linkmode", map[uint8]string{0: "DEFAULT", 1: "DORMANT"}[v[0]])
	}
	if v, has := a[iflaGroup]; has && len(v) >= 4 {
		if g := native.Uint32(v); g == 0 {
			o.set("group", "default")
		} else {
			o.set("group", g)
		}
	}
	if v, has := a[iflaTxqlen]; has && len(v) >= 4 {
		o.set("txqlen", native.Uint32(v))
	}
	switch ifiType {
	case syscall.ARPHRD_ETHER:
		o.set("link_type", "ether")
	case syscall.ARPHRD_LOOPBACK:
		o.set("link_type", "loopback")
	case syscall.ARPHRD_NONE:
		o.set("link_type", "none")
	}
	if v, has := a[iflaAddress]; has {
		o.set("address", net.HardwareAddr(v).String())
	}
	if v, has := a[iflaBroadcast]; has {
		o.set("broadcast", net.HardwareAddr(v).String())
	}
	if otherNs && len(nsid) >= 4 {
		if l, has := a[iflaLink]; has && len(l) >= 4 {
			o.set("link_index", int32(native.Uint32(l)))
		}
		o.set("link_netnsid", int32(native.Uint32(nsid)))
	}
	if v, has := a[iflaIfalias]; has && len(v) > 0 {
		o.set("ifalias", cstring(v))
	}
	return o.String()
}

func nameOf(nl *rtnl, index int32) string {
	msg, err := nl.getLink("", index)
	if err != nil {
		return ""
	}
	return cstring(parseAttrs(msg[16:])[iflaIfname])
}
