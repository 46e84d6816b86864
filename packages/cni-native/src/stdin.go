package main

import "io"

// readStdin keeps at most limit+1 bytes of r (enough for the daemon's envelope to say the
// netconf is too large) and reads and drops the rest, so that a runtime writing all of stdin
// before it reads the answer is never blocked.
func readStdin(r io.Reader, limit int) ([]byte, error) {
	kept, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(kept) > limit {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
	}
	return kept, nil
}
