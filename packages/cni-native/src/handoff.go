package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The wire to the daemon (@isthmus/handoff, docs/cni.md "The hand-off protocol"): one
// connection per call; this client writes one JSON request and half-closes, the daemon writes
// one JSON reply {stdout, stderr, exitCode} or a refusal {refused} and closes.

// request is the hand-off request, written as the Node client writes it (JSON.stringify of
// {v, env, stdin, selfNames}, plan.ts planHandoff), so that a daemon cannot tell them apart.
// env holds those of keys that are set, in that order.
func request(version int, keys []string, stdin []byte, selfNames []string) []byte {
	b := make([]byte, 0, len(stdin)+1024)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"env":{`...)
	first := true
	for _, k := range keys {
		v, ok := os.LookupEnv(k)
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	b = append(b, `},"stdin":`...)
	b = appendJSONString(b, string(stdin))
	b = append(b, `,"selfNames":`...)
	b = appendJSONStrings(b, selfNames)
	return append(b, '}')
}

type outcomeKind int

const (
	// The daemon answered: print its answer.
	answered outcomeKind = iota
	// The daemon did not take the call (no daemon, an untrusted socket, a refusal): nothing
	// ran, so the fallback may run it.
	notHandled
	// The request went out but no proper answer came back: the daemon may have run the call,
	// so it must not run a second time here (a second ADD of one attachment is refused).
	lost
)

type outcome struct {
	kind      outcomeKind
	why       string
	untrusted bool // the socket failed the trust checks
	refused   bool // the daemon refused the request
	stdout    string
	stderr    string
	exitCode  int
}

// An answer larger than this is not one (a result or an error document is a few KB).
const maxAnswerBytes = 16 << 20

// handOff sends req to the daemon at socket, once trustedSocket allows it.
func handOff(socket string, req []byte, timeout time.Duration) outcome {
	check := trustedSocket(socket, syscall.Geteuid())
	if !check.ok {
		return outcome{kind: notHandled, why: check.why, untrusted: !check.absent}
	}
	conn, err := dial(check.path)
	if err != nil {
		return outcome{kind: notHandled, why: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	_, werr := conn.Write(req)
	if werr == nil {
		werr = conn.CloseWrite()
	}
	// Read even after a failed write: a daemon that refused early may have said why.
	body, rerr := io.ReadAll(io.LimitReader(conn, maxAnswerBytes+1))
	switch {
	case errors.Is(rerr, os.ErrDeadlineExceeded) || errors.Is(werr, os.ErrDeadlineExceeded):
		return outcome{kind: lost, why: fmt.Sprintf("no answer within %d ms", timeout.Milliseconds())}
	case rerr != nil:
		return outcome{kind: lost, why: errnoText(rerr)}
	case len(body) > maxAnswerBytes:
		return outcome{kind: lost, why: fmt.Sprintf("an answer larger than %d bytes", maxAnswerBytes)}
	}
	out := decodeAnswer(body)
	if out.kind == lost && werr != nil {
		out.why = errnoText(werr)
	}
	return out
}

// dial connects to the unix socket at path. A full listen backlog (EAGAIN, 100 runtimes
// starting at once) is tried again for about half a second before it counts as no daemon.
func dial(path string) (*net.UnixConn, error) {
	delay := 2 * time.Millisecond
	for attempt := 0; ; attempt++ {
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.EAGAIN) || attempt == 8 {
			return nil, fmt.Errorf("connect: %s", errnoText(err))
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// decodeAnswer reads the daemon's answer as @isthmus/handoff's codecs do: a reply
// (HandoffReply), else a refusal (HandoffRefusal), else nothing usable.
func decodeAnswer(body []byte) outcome {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		if json.Valid(body) {
			return outcome{kind: lost, why: "the daemon answered something else"}
		}
		return outcome{kind: lost, why: "the daemon closed the connection without an answer"}
	}
	stdout, ok1 := jsonString(doc["stdout"])
	stderr, ok2 := jsonString(doc["stderr"])
	code, ok3 := jsonNumber(doc["exitCode"])
	if ok1 && ok2 && ok3 {
		return outcome{kind: answered, stdout: stdout, stderr: stderr, exitCode: exitCodeOf(code)}
	}
	if why, ok := jsonString(doc["refused"]); ok {
		return outcome{kind: notHandled, why: why, refused: true}
	}
	return outcome{kind: lost, why: "the daemon answered something else"}
}

func jsonNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		// Out of float64's range: still a number on the wire (JavaScript reads it as ±Infinity).
		return math.Inf(1), true
	}
	return f, true
}

// exitCodeOf is the exit status for the daemon's exitCode: its low byte, as for any process;
// a value that is not an integer exits 1.
func exitCodeOf(f float64) int {
	if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 1
	}
	return int(int32(f)) & 0xff
}
