package main

import "strconv"

// The codes of CNI SPEC §Error this client answers itself (999: isthmus's code for a bug).
const (
	codeIO            = 5
	codeInvalidConfig = 7
	codeTryAgainLater = 11
	codeInternal      = 999
)

// cniError is the CNI error document (CNI SPEC §Error).
type cniError struct {
	code    int
	msg     string
	details string
}

// document prints e as the envelope does (cni-exec's errorDocument: JSON.stringify with a
// 4-space indent, no newline at the end, no `details` when there are none).
func (e cniError) document(version string) []byte {
	b := append([]byte(nil), "{\n    \"cniVersion\": "...)
	b = appendJSONString(b, version)
	b = append(b, ",\n    \"code\": "...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = append(b, ",\n    \"msg\": "...)
	b = appendJSONString(b, e.msg)
	if e.details != "" {
		b = append(b, ",\n    \"details\": "...)
		b = appendJSONString(b, e.details)
	}
	return append(b, "\n}"...)
}
