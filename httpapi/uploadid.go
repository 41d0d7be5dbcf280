package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// Upload IDs. A resumable upload lives in the data dir of the node that
// took it, so its ID names that node: "<node name>.<32 hex digits>". Any
// node reads the owner from the ID and relays the request there
// (uploadrelay.go), so the URL works through any node (behind a Service
// with no affinity, a resume usually reaches another pod). The name is the
// node's --name as it is, readable in logs and URLs; it must fit
// [A-Za-z0-9][A-Za-z0-9._-]{0,127} (pod names and host names do) to be
// used in a URL path segment and a file name without escaping. A node
// with another name gives out IDs of the random part alone, which only it
// serves: the form of every ID before relaying, still accepted. The random
// part is 128 bits from crypto/rand, so an upload's URL cannot be guessed
// (reads of an upload need no token). IDs are checked against this form
// before anything else sees them: no client byte becomes a path unchecked.

var (
	ownerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	uploadIDRE  = regexp.MustCompile(`^(?:([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.)?([0-9a-f]{32})$`)
)

// uploadOwnerName is the owner part of the IDs a node of this name gives
// out: the name, or "" when it does not fit.
func uploadOwnerName(node string) string {
	if ownerNameRE.MatchString(node) {
		return node
	}
	return ""
}

// newUploadID returns a fresh upload ID owned by owner ("" = unnamed).
func newUploadID(owner string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes instead)
	id := hex.EncodeToString(b[:])
	if owner != "" {
		id = owner + "." + id
	}
	return id
}

// parseUploadID checks an upload ID and returns the node it names ("" for
// an ID of the unnamed form).
func parseUploadID(id string) (owner string, ok bool) {
	m := uploadIDRE.FindStringSubmatch(id)
	if m == nil {
		return "", false
	}
	return m[1], true
}
