package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Once a killed child has exited, how long its output pipes may stay open (a grandchild that
// inherited them) before the answer goes without the rest.
const drainAfterExit = 200 * time.Millisecond

// capped collects at most max bytes; over reports whether more came.
type capped struct {
	buf  []byte
	max  int64
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(len(c.buf)+len(p)) > c.max {
		c.over = true
		return 0, io.ErrShortWrite
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// run starts one command and waits for it. The pipes are the spawner's own (not exec's copying
// goroutines), so that an answer never waits on a grandchild that kept a pipe open.
func run(r request, env []string) answer {
	cmd := exec.Command(r.File, r.Args...)
	cmd.Env = env

	outR, outW, err := os.Pipe()
	if err != nil {
		return answer{ID: r.ID, Error: err.Error()}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return answer{ID: r.ID, Error: err.Error()}
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	var inW *os.File
	if r.Input != nil && *r.Input != "" {
		inR, w, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return answer{ID: r.ID, Error: err.Error()}
		}
		cmd.Stdin, inW = inR, w
	}

	startErr := cmd.Start()
	// The child holds its ends now (or never will): ours go.
	outW.Close()
	errW.Close()
	if in, ok := cmd.Stdin.(*os.File); ok {
		in.Close()
	}
	if startErr != nil {
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		return answer{ID: r.ID, Error: startErr.Error()}
	}

	if inW != nil {
		// A command that does not read its stdin closes the pipe early: EPIPE is not a failure.
		go func(text string) {
			_, _ = io.WriteString(inW, text)
			inW.Close()
		}(*r.Input)
	}

	stdout := &capped{max: r.MaxBuffer}
	stderr := &capped{max: r.MaxBuffer}
	var overflow sync.Once
	overflowed := false
	kill := func() { _ = cmd.Process.Kill() }
	var reading sync.WaitGroup
	for _, p := range []struct {
		from *os.File
		to   *capped
	}{{outR, stdout}, {errR, stderr}} {
		reading.Add(1)
		go func(from *os.File, to *capped) {
			defer reading.Done()
			if _, err := io.Copy(to, from); err != nil && to.over {
				overflow.Do(func() { overflowed = true; kill() })
			}
		}(p.from, p.to)
	}

	timedOut := false
	var timeoutMu sync.Mutex
	timer := time.AfterFunc(time.Duration(r.TimeoutMs)*time.Millisecond, func() {
		timeoutMu.Lock()
		timedOut = true
		timeoutMu.Unlock()
		kill()
	})
	waitErr := cmd.Wait()
	timer.Stop()

	// The child is gone; its output is read to the end unless a grandchild holds the pipes.
	done := make(chan struct{})
	go func() { reading.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainAfterExit):
		outR.Close()
		errR.Close()
		<-done
	}
	outR.Close()
	errR.Close()

	if overflowed {
		return answer{ID: r.ID, Error: fmt.Sprintf("output of %s over %d bytes (maxBuffer)", r.File, r.MaxBuffer)}
	}
	out, errText := string(stdout.buf), string(stderr.buf)
	a := answer{ID: r.ID, Stdout: &out, Stderr: &errText}
	code := 0
	if waitErr != nil {
		exitErr, ok := waitErr.(*exec.ExitError)
		if !ok {
			return answer{ID: r.ID, Error: waitErr.Error()}
		}
		ws, _ := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			code = timeoutExit
			a.Signal = signalName(ws.Signal())
			timeoutMu.Lock()
			a.TimedOut = timedOut
			timeoutMu.Unlock()
		} else {
			code = exitErr.ExitCode()
		}
	}
	a.ExitCode = &code
	return a
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return fmt.Sprintf("signal %d", int(s))
}
