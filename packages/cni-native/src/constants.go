package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// These values are defined in the TypeScript packages. scripts/build.mjs reads them from their
// built modules and links them in (`-ldflags -X main.name=value`), so they are written only
// there; a client built any other way has them empty and refuses to run (loadLinked).
var (
	handoffVersion    string // @isthmus/handoff HANDOFF_VERSION
	defaultSocket     string // @isthmus/handoff DEFAULT_DAEMON_SOCKET
	cniEnvKeys        string // @isthmus/handoff CNI_ENV_KEYS, comma-separated
	handoffEnvKeys    string // @isthmus/handoff HANDOFF_ENV_KEYS, comma-separated
	handoffTimeoutMs  string // @isthmus/handoff HANDOFF_TIMEOUT_MS
	supportedVersions string // @isthmus/cni-exec/protocol SUPPORTED_VERSIONS, comma-separated
	currentVersion    string // @isthmus/cni-exec/protocol CURRENT_VERSION
	maxStdinBytes     string // @isthmus/cni-exec/protocol MAX_STDIN_BYTES
	internalErrorMsg  string // the msg of @isthmus/cni-exec/protocol internalError (code 999)
	aboutText         string // @isthmus/cni-exec ABOUT: stderr when CNI_COMMAND is unset
)

// linked holds the linked-in values, decoded.
type linked struct {
	handoffVersion    int
	defaultSocket     string
	cniEnvKeys        []string
	handoffEnvKeys    []string
	timeout           time.Duration
	supportedVersions []string
	currentVersion    string
	maxStdinBytes     int
	internalErrorMsg  string
	about             string
}

func loadLinked() (linked, error) {
	number := func(name, v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s is %q, not a positive number", name, v)
		}
		return n, nil
	}
	list := func(v string) []string {
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	var l linked
	var err error
	if l.handoffVersion, err = number("handoffVersion", handoffVersion); err != nil {
		return l, err
	}
	ms, err := number("handoffTimeoutMs", handoffTimeoutMs)
	if err != nil {
		return l, err
	}
	l.timeout = time.Duration(ms) * time.Millisecond
	if l.maxStdinBytes, err = number("maxStdinBytes", maxStdinBytes); err != nil {
		return l, err
	}
	l.defaultSocket = defaultSocket
	l.cniEnvKeys = list(cniEnvKeys)
	l.handoffEnvKeys = list(handoffEnvKeys)
	l.supportedVersions = list(supportedVersions)
	l.currentVersion = currentVersion
	l.internalErrorMsg = internalErrorMsg
	l.about = aboutText
	for name, v := range map[string]string{
		"defaultSocket": defaultSocket, "cniEnvKeys": cniEnvKeys, "handoffEnvKeys": handoffEnvKeys,
		"supportedVersions": supportedVersions, "currentVersion": currentVersion,
		"internalErrorMsg": internalErrorMsg, "aboutText": aboutText,
	} {
		if v == "" {
			return l, fmt.Errorf("%s is empty", name)
		}
	}
	return l, nil
}
