// isthmus-spawner runs commands for a Node process that cannot start them cheaply itself: a fork
// of a 100+ MB process stalls its event loop for milliseconds, while Go starts a child with
// vfork. Requests arrive as JSON lines on stdin, each runs in a goroutine of its own, and each
// answer is one JSON line on stdout, in the order the commands finish (see protocol.go).
//
// It ends when stdin closes, after answering what is in flight, and at once when its parent dies
// (PR_SET_PDEATHSIG): a killed daemon leaves no spawner behind.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
)

func main() {
	parent := flag.Int("parent", 0, "pid of the process that started this one; exit if it is already gone")
	ipPath := flag.String("ip", "", "serve this `ip`'s batches of the lines in ipbuiltin.go over netlink, in process")
	nsenterPath := flag.String("nsenter", "", "and those run through this nsenter (--net=PATH ip ...)")
	flag.Parse()
	if err := dieWithParent(*parent); err != nil {
		fmt.Fprintln(os.Stderr, "isthmus-spawner:", err)
		os.Exit(1)
	}

	env := append(os.Environ(), "LC_ALL=C")
	out := newAnswers(os.Stdout)
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	var inFlight sync.WaitGroup
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			req, bad := parseRequest(line)
			if bad != nil {
				out.write(*bad)
			} else {
				inFlight.Add(1)
				go func() {
					defer inFlight.Done()
					out.write(answerTo(req, env, *ipPath, *nsenterPath))
				}()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "isthmus-spawner: reading requests:", err)
			break
		}
	}
	inFlight.Wait()
}

// answerTo serves one request: over netlink when ipbuiltin.go can, else as a process of its own
// (unless the request asked for netlink only).
func answerTo(req request, env []string, ipPath, nsenterPath string) answer {
	if call, served := parseIPCall(req, ipPath, nsenterPath); served {
		if a, ran := runIPCall(call); ran {
			a.ID = req.ID
			return a
		}
	}
	if req.NetlinkOnly {
		return answer{ID: req.ID, Declined: true}
	}
	return run(req, env)
}
