// Command isthmus is the CNI plugin executable that `isthmus cni install` puts in the runtime's
// bin directory: a small static program that starts in about a millisecond, answers VERSION
// itself and hands every other call to the isthmus daemon (`isthmus serve`) over its unix
// socket, then prints the daemon's answer and exits with its code. When no daemon takes the
// call it runs the Node fallback beside it if one is installed, else answers CNI code 11.
// A Node program cannot do this job: Node's own start takes longer than a reference plugin's
// whole ADD.
//
// stdout carries exactly one CNI document or nothing, whatever happens.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run())
}

// The netconf `type` this plugin answers to whatever its file is named.
const pluginType = "isthmus"

func run() (exit int) {
	// A runtime that closed stdout makes a write fail (EPIPE) instead of killing this process.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	version := currentVersion
	defer func() {
		if r := recover(); r != nil {
			exit = bug(r, version)
		}
	}()
	l, err := loadLinked()
	if err != nil {
		panic(fmt.Sprintf("this client was built without its constants (%s): build it with packages/cni-native/scripts/build.mjs", err))
	}
	switch os.Getenv("CNI_COMMAND") {
	case "VERSION":
		write(os.Stdout, versionAnswer(l))
		return 0
	case "":
		// What the reference prints for no command; stdin is not read (a person at a terminal).
		write(os.Stderr, l.about)
		return 0
	}
	stdin, err := readStdin(os.Stdin, l.maxStdinBytes)
	if err != nil {
		return answer(cniError{code: codeIO, msg: "error reading from stdin", details: errnoText(err)}, version)
	}
	nc := readNetconf(stdin, l.defaultSocket)
	if nc.version != "" {
		version = nc.version
	}
	self := selfName()
	fallback, haveFallback := fallbackPath()
	viaFallback := func(otherwise cniError) int {
		if !haveFallback {
			return answer(otherwise, version)
		}
		code, err := runFallback(fallback, stdin, self)
		if err != nil {
			otherwise.details += fmt.Sprintf("; the Node fallback %s could not be started: %s", fallback, errnoText(err))
			return answer(otherwise, version)
		}
		return code
	}
	if nc.optOut {
		return viaFallback(cniError{
			code: codeInvalidConfig,
			msg:  "invalid network config",
			details: `"daemon": false asks to run the call without the isthmus daemon, which needs the Node fallback ` +
				fallback + ": install it with `isthmus cni install --fallback`",
		})
	}
	keys := l.cniEnvKeys
	if nc.keystone {
		keys = l.handoffEnvKeys
	}
	names := []string{pluginType}
	if self != pluginType {
		names = append(names, self)
	}
	out := handOff(nc.socket, request(l.handoffVersion, keys, stdin, names), l.timeout)
	switch out.kind {
	case answered:
		write(os.Stderr, out.stderr)
		write(os.Stdout, out.stdout)
		return out.exitCode
	case lost:
		// Try again later: the daemon may have run the call, so it is not run a second time.
		return answer(cniError{code: codeTryAgainLater, msg: "isthmus daemon did not answer", details: nc.socket + ": " + out.why}, version)
	}
	if out.untrusted {
		write(os.Stderr, "isthmus: not handing the call to the daemon: "+out.why+"\n")
	}
	if nc.hasCluster {
		// A cluster network lives in its daemon (etcd, the overlay); the fallback cannot serve it.
		return answer(cniError{
			code: codeTryAgainLater,
			msg:  "isthmus daemon not reachable",
			details: fmt.Sprintf("cluster network %s is served by `isthmus serve --cluster` on %s "+
				`(the netconf's "daemon"), and none answers there: %s`, nc.cluster, nc.socket, out.why),
		}, version)
	}
	return viaFallback(cniError{code: codeTryAgainLater, msg: "isthmus daemon not reachable", details: notReachable(nc.socket, out)})
}

// notReachable says why no daemon took the call, and the two ways out.
func notReachable(socket string, out outcome) string {
	var why string
	switch {
	case out.refused:
		why = fmt.Sprintf("the isthmus daemon on %s refused the call (%s)", socket, out.why)
	case out.untrusted:
		why = fmt.Sprintf("the socket %s is not used: %s", socket, out.why)
	default:
		why = fmt.Sprintf("no isthmus daemon answers on %s (%s)", socket, strings.TrimPrefix(out.why, socket+": "))
	}
	return why + "; start `isthmus serve` (or name its socket in the netconf's \"daemon\"), " +
		"or install the Node fallback, which runs calls without a daemon, with `isthmus cni install --fallback`"
}

// selfName is the name the runtime ran this file under: the netconf's `type`.
func selfName() string {
	if len(os.Args) == 0 || os.Args[0] == "" {
		return pluginType
	}
	return filepath.Base(os.Args[0])
}

// versionAnswer is the envelope's VERSION answer (cni-exec versionInfo, printed compact with a
// newline as the reference plugins do).
func versionAnswer(l linked) string {
	b := append([]byte(nil), `{"cniVersion":`...)
	b = appendJSONString(b, l.currentVersion)
	b = append(b, `,"supportedVersions":`...)
	b = appendJSONStrings(b, l.supportedVersions)
	return string(append(b, "}\n"...))
}

// answer prints e as the call's one document and returns the exit code of an error.
func answer(e cniError, version string) int {
	write(os.Stdout, string(e.document(version)))
	return 1
}

// bug answers a panic as the Node executable answers a bug: code 999 with one short line on
// stdout, the stack on stderr (the plugin's log: runtimes keep a plugin's stderr).
func bug(r interface{}, version string) int {
	line := strings.SplitN(fmt.Sprint(r), "\n", 2)[0]
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	msg := internalErrorMsg
	if msg == "" {
		msg = "internal error"
	}
	write(os.Stderr, fmt.Sprintf("isthmus: internal error: %v\n%s", r, debug.Stack()))
	return answer(cniError{code: codeInternal, msg: msg, details: line}, version)
}

// write writes s whole; a reader that went away is not this client's problem.
func write(f *os.File, s string) {
	if s != "" {
		_, _ = f.WriteString(s)
	}
}
