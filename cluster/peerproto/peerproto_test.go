package peerproto

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWireValues pins every value that crosses the wire to its literal:
// nodes of the previous release talk to new ones during a rolling update,
// so renaming a constant must not change what it says. A failure here is a
// protocol change, which needs a plan for mixed versions first.
func TestWireValues(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"Prefix", Prefix, "/internal/v1"},
		{"PathBlob", PathBlob, "/blobs/"},
		{"PathStream", PathStream, "/blobs"},
		{"PathPropose", PathPropose, "/propose"},
		{"PathJoin", PathJoin, "/raft/join"},
		{"PathRemove", PathRemove, "/raft/remove"},
		{"PathStatus", PathStatus, "/raft/status"},
		{"PathHeartbeat", PathHeartbeat, "/heartbeat"},
		{"PathProgress", PathProgress, "/progress/"},
		{"PathUpload", PathUpload, "/uploads/"},

		{"HeaderReason", HeaderReason, "X-Gosty-Reason"},
		{"HeaderSize", HeaderSize, "X-Gosty-Size"},
		{"HeaderHash", HeaderHash, "X-Gosty-Hash"},
		{"HeaderSubmitter", HeaderSubmitter, "X-Gosty-Submitter"},

		{"CodeNotLeader", CodeNotLeader, "not_leader"},
		{"CodeStale", CodeStale, "stale"},
		{"CodeConflict", CodeConflict, "conflict"},
		{"CodeNotFound", CodeNotFound, "not_found"},
		{"CodeInvalid", CodeInvalid, "invalid"},
		{"CodeChecksumMismatch", CodeChecksumMismatch, "checksum_mismatch"},
		{"CodeTooLarge", CodeTooLarge, "too_large"},
		{"CodeInsufficientStorage", CodeInsufficientStorage, "insufficient_storage"},
		{"CodeCanceled", CodeCanceled, "canceled"},
		{"CodeTimeout", CodeTimeout, "timeout"},
		{"CodeInternal", CodeInternal, "internal"},
		{"CodeMethodNotAllowed", CodeMethodNotAllowed, "method_not_allowed"},

		{"ReasonTask", ReasonTask, "task"},
		{"ReasonReplicate", ReasonReplicate, "replicate"},
		{"ReasonServe", ReasonServe, "serve"},
		{"ReasonUpload", ReasonUpload, "upload"},
		{"ReasonOther", ReasonOther, "other"},
		{"DirectionIn", DirectionIn, "in"},
		{"DirectionOut", DirectionOut, "out"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q on the wire, want %q", c.name, c.got, c.want)
		}
	}
}

// TestErrorEnvelope pins the error answer's JSON.
func TestErrorEnvelope(t *testing.T) {
	b, err := json.Marshal(ErrorBody{ErrorDetail{Code: CodeNotLeader, Message: "not the leader"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"error":{"code":"not_leader","message":"not the leader"}}`; string(b) != want {
		t.Errorf("envelope %s, want %s", b, want)
	}
	var eb ErrorBody
	if err := json.Unmarshal([]byte(`{"error":{"code":"stale","message":"m"}}`), &eb); err != nil || eb.Error != (ErrorDetail{"stale", "m"}) {
		t.Errorf("decoded %+v, %v", eb, err)
	}
}

func TestTransferReason(t *testing.T) {
	for in, want := range map[string]string{
		"task": "task", "replicate": "replicate", "serve": "serve", "upload": "upload",
		"other": "other", "": "other", "Task": "other", "anything": "other",
	} {
		if got := TransferReason(in); got != want {
			t.Errorf("TransferReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTransferBytesShared: the server and the client side of one node
// share the metric, whoever registers it first; a clash is an error (or
// TransferBytes's panic), never a second metric.
func TestTransferBytesShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := TransferBytes(reg), TransferBytes(reg)
	if a != b {
		t.Fatal("second TransferBytes did not reuse the registered vector")
	}
	if TransferBytes(nil) == nil {
		t.Fatal("TransferBytes(nil) is nil")
	}
	n, err := CountingReader{strings.NewReader("hello"), a.WithLabelValues(DirectionIn, ReasonTask)}.Read(make([]byte, 8))
	if n != 5 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	if got := testutil.ToFloat64(b.WithLabelValues(DirectionIn, ReasonTask)); got != 5 {
		t.Errorf("counted %v bytes, want 5", got)
	}

	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "gosty_transfer_bytes_total", Help: "x"}))
	if _, err := RegisterTransferBytes(clash); err == nil {
		t.Fatal("registering over a gauge of the same name: no error")
	}
}

// TestImportsNoGosty keeps the rule of the package doc: both ends import
// this package, so it imports none of gosty's (cluster imports it, and
// httpapi and node sit above cluster).
func TestImportsNoGosty(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range src.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/gosty/gosty") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
