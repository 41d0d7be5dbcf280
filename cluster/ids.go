package cluster

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Names that reach the disk or a URL are validated where they enter: job
// IDs (they name work directories and task IDs), blob hashes (ValidHash:
// they are the only names in the blob store) and the relative paths of
// published files (keys of Job.Outputs, served under a job's files/).
// Nothing else a client or a peer sends becomes a file name.

// MaxJobIDLen bounds a job ID.
const MaxJobIDLen = 64

// ValidJobID reports whether id may name a job: 1 to 64 ASCII letters,
// digits, '-' or '_' (so never ".", "..", a separator, NUL or an encoded
// byte). Nodes mint 16 lower-case base32 characters.
func ValidJobID(id string) bool {
	if id == "" || len(id) > MaxJobIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// MaxFilePathLen bounds the relative path of a published file.
const MaxFilePathLen = 512

// CheckFilePath says why rel cannot name a published file of a job, or nil:
// it must be a clean, relative, slash-separated path of at most 512 bytes of
// valid UTF-8 whose segments are neither empty, "." nor "..", with no
// backslash, no control character (NUL included), no ':' and no '%' (a
// path is never decoded twice, so an escaped byte has no business here).
func CheckFilePath(rel string) error {
	switch {
	case rel == "":
		return invalidf("empty path")
	case len(rel) > MaxFilePathLen:
		return invalidf("path longer than %d bytes", MaxFilePathLen)
	case !utf8.ValidString(rel):
		return invalidf("path is not valid UTF-8")
	case rel[0] == '/':
		return invalidf("absolute path")
	}
	for _, r := range rel {
		switch {
		case r < 0x20 || r == 0x7f:
			return invalidf("control character in path")
		case r == '\\':
			return invalidf("backslash in path")
		case r == ':':
			return invalidf("':' in path")
		case r == '%':
			return invalidf("escaped byte in path")
		}
	}
	for seg := range strings.SplitSeq(rel, "/") {
		switch seg {
		case "":
			return invalidf("empty path segment")
		case ".", "..":
			return invalidf("%q segment in path", seg)
		}
	}
	return nil
}

func invalidf(format string, args ...any) error { return Invalid(fmt.Errorf(format, args...)) }
