package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// The Node fallback: the whole plugin as a Node single-executable application, installed beside
// this client by `isthmus cni install --fallback`. It runs a call when no daemon takes it (and
// every call of a netconf with "daemon": false), at Node's start-up cost.
const fallbackFile = "isthmus-node"

// Read by the fallback (cni-plugin's bin/cni-exec.ts): the name the runtime ran this client
// under (the netconf's `type`, which the fallback must answer to as well), and that the
// hand-off was tried already and must not be tried again.
const (
	envName     = "ISTHMUS_CNI_NAME"
	envFallback = "ISTHMUS_CNI_FALLBACK"
)

// fallbackPath is where the fallback belongs (beside this executable's real path) and whether
// an executable file is there.
func fallbackPath() (string, bool) {
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	path := filepath.Join(filepath.Dir(exe), fallbackFile)
	st, err := os.Stat(path)
	return path, err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// runFallback runs the fallback with this process's environment (plus the two variables
// above) and the stdin read, its stdout and stderr being this process's; its exit code is
// this client's. A fallback that cannot be started is an error (start) and nothing ran.
func runFallback(path string, stdin []byte, self string) (code int, start error) {
	cmd := exec.Command(path)
	cmd.Env = append(withoutVars(os.Environ(), envName, envFallback), envName+"="+self, envFallback+"=1")
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	// The fallback dies with this client (a runtime that gives up kills the plugin it ran, as
	// it did when the plugin was the Node executable itself). Pdeathsig follows the thread that
	// started the child, so that thread must outlive it.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			write(os.Stderr, fmt.Sprintf("isthmus: the Node fallback %s was killed by %s\n", path, status.Signal()))
			return 128 + int(status.Signal()), nil
		}
		return exit.ExitCode(), nil
	default:
		// Its output could not be passed on; it ran, so this is not a start failure.
		write(os.Stderr, fmt.Sprintf("isthmus: the Node fallback %s: %s\n", path, err))
		return 1, nil
	}
}

func withoutVars(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
