package main

import (
	"bytes"
	"encoding/json"
)

// netconf is what the client reads in the netconf: where to send the call, which variables the
// daemon needs, and what to say when no daemon takes it. Everything else is the daemon's to
// read (and to report in the protocol's form).
type netconf struct {
	// The top-level "daemon": a socket path; absent, of another type, or a netconf that is not
	// a JSON object means the default socket (plan.ts daemonSocketOf).
	socket string
	// "daemon": false (or ""): the netconf asks for no daemon.
	optOut bool
	// The top-level "cluster", when a string: only a cluster daemon serves that network.
	cluster    string
	hasCluster bool
	// contrail.keystone is there: the call needs the OS_* credentials (plan.ts handoffEnv).
	keystone bool
	// "cniVersion" when it is x.y.z: the version of this client's own error documents.
	version string
}

func readNetconf(stdin []byte, defaultSocket string) netconf {
	nc := netconf{socket: defaultSocket}
	var doc map[string]json.RawMessage
	if json.Unmarshal(stdin, &doc) != nil || doc == nil {
		return nc
	}
	if raw, ok := doc["daemon"]; ok {
		if s, ok := jsonString(raw); ok {
			if s == "" {
				nc.optOut = true
			} else {
				nc.socket = s
			}
		} else if string(bytes.TrimSpace(raw)) == "false" {
			nc.optOut = true
		}
	}
	if s, ok := jsonString(doc["cluster"]); ok {
		nc.cluster, nc.hasCluster = s, true
	}
	var contrail map[string]json.RawMessage
	if raw, ok := doc["contrail"]; ok && json.Unmarshal(raw, &contrail) == nil && contrail != nil {
		_, nc.keystone = contrail["keystone"]
	}
	if s, ok := jsonString(doc["cniVersion"]); ok && isVersion(s) {
		nc.version = s
	}
	return nc
}

// jsonString is raw's value when raw is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// isVersion tells whether v has the form digits.digits.digits.
func isVersion(v string) bool {
	parts, digits := 0, 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '.' {
			if digits == 0 {
				return false
			}
			parts, digits = parts+1, 0
			continue
		}
		if v[i] < '0' || v[i] > '9' {
			return false
		}
		digits++
	}
	return parts == 3
}
