package main

import (
	"encoding/json"
	"io"
	"sync"
)

// request is one command to run. Input, when present, is the child's whole stdin; without it the
// child reads an empty stdin.
type request struct {
	ID        json.Number `json:"id"`
	File      string      `json:"file"`
	Args      []string    `json:"args"`
	Input     *string     `json:"input,omitempty"`
	TimeoutMs int64       `json:"timeoutMs,omitempty"`
	MaxBuffer int64       `json:"maxBuffer,omitempty"`
	// NetlinkOnly: serve it over netlink (ipbuiltin.go) or answer declined; never run it.
	NetlinkOnly bool `json:"netlinkOnly,omitempty"`
}

// answer is what became of one request: stdout, stderr and an exit code when the command ran to an
// exit or was killed (then signal names the signal, timedOut says the timeout did it, and exitCode
// is 124 as timeout(1) reports it); error alone when it could not start or its output overflowed.
type answer struct {
	ID       json.Number `json:"id"`
	Stdout   *string     `json:"stdout,omitempty"`
	Stderr   *string     `json:"stderr,omitempty"`
	ExitCode *int        `json:"exitCode,omitempty"`
	Signal   string      `json:"signal,omitempty"`
	TimedOut bool        `json:"timedOut,omitempty"`
	Error    string      `json:"error,omitempty"`
	Declined bool        `json:"declined,omitempty"`
}

const (
	defaultTimeoutMs = 10_000
	// As execFileExec's maxBuffer: `ip -json link show` on a busy host is the biggest reader.
	defaultMaxBuffer = 16 << 20
	timeoutExit      = 124
)

// parseRequest decodes one line; a line that is not a request is answered with an error (under
// its id when one can be read, else id 0) rather than ending the spawner.
func parseRequest(line []byte) (request, *answer) {
	var r request
	if err := json.Unmarshal(line, &r); err != nil {
		var only struct {
			ID json.Number `json:"id"`
		}
		_ = json.Unmarshal(line, &only)
		id := only.ID
		if id == "" {
			id = "0"
		}
		return r, &answer{ID: id, Error: "bad request: " + err.Error()}
	}
	if r.ID == "" || r.File == "" {
		id := r.ID
		if id == "" {
			id = "0"
		}
		return r, &answer{ID: id, Error: "bad request: id and file are required"}
	}
	if r.TimeoutMs <= 0 {
		r.TimeoutMs = defaultTimeoutMs
	}
	if r.MaxBuffer <= 0 {
		r.MaxBuffer = defaultMaxBuffer
	}
	return r, nil
}

// answers writes one JSON line per answer; goroutines finish in any order, lines never interleave.
type answers struct {
	mu sync.Mutex
	w  io.Writer
}

func newAnswers(w io.Writer) *answers { return &answers{w: w} }

func (a *answers) write(x answer) {
	line, err := json.Marshal(x)
	if err != nil {
		line, _ = json.Marshal(answer{ID: x.ID, Error: "cannot encode the answer: " + err.Error()})
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	// A parent that stopped reading is gone: nothing left to tell.
	_, _ = a.w.Write(line)
}
