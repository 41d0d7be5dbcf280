package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gosty/gosty/cluster/peerproto"
)

func peerTestData(t *testing.T, n int) ([]byte, BlobRef) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, BlobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(n)}
}

func peerTestStore(t *testing.T) *BlobStore {
	t.Helper()
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func peerCounter(t *testing.T, vec *prometheus.CounterVec, direction, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := vec.WithLabelValues(direction, reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func assertNoTemp(t *testing.T, b *BlobStore) {
	t.Helper()
	if ents, _ := os.ReadDir(b.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestBlobReceiveAndStat(t *testing.T) {
	data, ref := peerTestData(t, 100_000)
	other, _ := peerTestData(t, len(data))
	tests := []struct {
		name    string
		want    BlobRef
		body    io.Reader
		invalid bool // error wraps ErrInvalid
		stored  bool
	}{
		{"exact", ref, bytes.NewReader(data), false, true},
		{"short", ref, bytes.NewReader(data[:len(data)-1]), true, false},
		{"long", ref, io.MultiReader(bytes.NewReader(data), strings.NewReader("x")), true, false},
		{"other content", ref, bytes.NewReader(other), true, false},
		{"bad hash", BlobRef{Hash: "../../etc/passwd", Size: 1}, strings.NewReader("x"), true, false},
		{"negative size", BlobRef{Hash: ref.Hash, Size: -1}, bytes.NewReader(data), true, false},
		{"read error", ref, io.MultiReader(bytes.NewReader(data[:10]), iotestErr{}), false, false},
		{"empty blob", BlobRef{Hash: hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }()), Size: 0}, strings.NewReader(""), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := peerTestStore(t)
			err := b.Receive(context.Background(), tc.want, tc.body)
			if tc.stored != (err == nil) {
				t.Fatalf("Receive: %v", err)
			}
			if err != nil && errors.Is(err, ErrInvalid) != tc.invalid {
				t.Fatalf("ErrInvalid=%v for %v", errors.Is(err, ErrInvalid), err)
			}
			got, ok := b.Stat(tc.want.Hash)
			if ok != tc.stored || (ok && got != tc.want) {
				t.Fatalf("Stat = %+v %v", got, ok)
			}
			assertNoTemp(t, b)
		})
	}
	t.Run("already stored reads nothing", func(t *testing.T) {
		b := peerTestStore(t)
		if _, err := b.Put(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := b.Receive(context.Background(), ref, iotestErr{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		b := peerTestStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Receive(ctx, ref, bytes.NewReader(data)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		assertNoTemp(t, b)
	})
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// holder is a minimal internal blob server (the real one lives in httpapi,
// which imports this package): ServeContent over the local file, optionally
// cutting the connection after cut bytes of each body.
type holder struct {
	t      *testing.T
	blobs  *BlobStore
	cut    int64 // >0: send this many body bytes, then drop the connection
	failAt int   // >0: from this request on, answer 500
	lie    []byte

	mu     sync.Mutex
	ranges []string
	reqs   int
	srv    *httptest.Server
}

func newHolder(t *testing.T, h *holder) *holder {
	h.t = t
	if h.blobs == nil {
		h.blobs = peerTestStore(t)
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *holder) addr() string { return strings.TrimPrefix(h.srv.URL, "http://") }

func (h *holder) seen() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reqs, append([]string(nil), h.ranges...)
}

func (h *holder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.reqs++
	n := h.reqs
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	h.mu.Unlock()
	if got := r.Header.Get(peerproto.HeaderReason); got == "" {
		h.t.Errorf("request without %s", peerproto.HeaderReason)
	}
	hash, ok := strings.CutPrefix(r.URL.Path, peerproto.Prefix+"/blobs/")
	if !ok || r.Method != http.MethodGet {
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	if h.failAt > 0 && n >= h.failAt {
		http.Error(w, "broken", http.StatusInternalServerError)
		return
	}
	if h.lie != nil {
		w.Header().Set("Content-Length", fmt.Sprint(len(h.lie)))
		_, _ = w.Write(h.lie)
		return
	}
	f, err := h.blobs.Open(hash)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"blob not found"}}`)
		return
	}
	defer f.Close()
	if h.cut > 0 {
		fi, _ := f.Stat()
		size := fi.Size()
		var off int64
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &off)
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			h.t.Error(err)
			return
		}
		defer conn.Close()
		if off > 0 {
			fmt.Fprintf(buf, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", off, size-1, size, size-off)
		} else {
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		}
		_, _ = f.Seek(off, io.SeekStart)
		_, _ = io.CopyN(buf, f, min(h.cut, size-off))
		_ = buf.Flush()
		return // the deferred Close cuts the body short
	}
	w.Header().Set("ETag", `"`+hash+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}

func newTestPeers(t *testing.T, blobs *BlobStore, reg prometheus.Registerer) *Peers {
	t.Helper()
	return NewPeers(PeerConfig{Blobs: blobs, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
}

func TestPeerPull(t *testing.T) {
	const size = 3<<20 + 123
	data, ref := peerTestData(t, size)
	lie, _ := peerTestData(t, size)
	stored := func(t *testing.T) *BlobStore {
		b := peerTestStore(t)
		if _, err := b.Put(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		holders   func(t *testing.T) []*holder
		wantErr   error // nil: success
		wantRange bool  // a Range request must have been seen
	}{
		{"one holder", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{blobs: stored(t)})}
		}, nil, false},
		{"absent then present", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{}), newHolder(t, &holder{blobs: stored(t)})}
		}, nil, false},
		{"cut body resumes from the same holder", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{blobs: stored(t), cut: 1 << 20})}
		}, nil, true},
		{"cut body resumes from the next holder", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{blobs: stored(t), cut: 1 << 20, failAt: 2}), newHolder(t, &holder{blobs: stored(t)})}
		}, nil, true},
		{"too many cuts", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{blobs: stored(t), cut: 100 << 10})}
		}, io.ErrUnexpectedEOF, true},
		{"lying holder", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{lie: lie})}
		}, ErrInvalid, false},
		{"lying holder then honest", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{lie: lie}), newHolder(t, &holder{blobs: stored(t)})}
		}, nil, false},
		{"short lie", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{lie: lie[:100]})}
		}, ErrInvalid, false},
		{"nobody has it", func(t *testing.T) []*holder {
			return []*holder{newHolder(t, &holder{}), newHolder(t, &holder{})}
		}, ErrNotFound, false},
		{"no holders", func(t *testing.T) []*holder { return nil }, ErrNotFound, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := tc.holders(t)
			var addrs []string
			for _, h := range hs {
				addrs = append(addrs, h.addr())
			}
			local := peerTestStore(t)
			reg := prometheus.NewRegistry()
			p := newTestPeers(t, local, reg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := p.Pull(ctx, ref, addrs, peerproto.ReasonTask)
			var ranges []string
			for _, h := range hs {
				_, r := h.seen()
				ranges = append(ranges, r...)
			}
			if tc.wantRange != (len(ranges) > 0) {
				t.Errorf("Range headers seen: %q", ranges)
			}
			for _, r := range ranges {
				if !strings.HasPrefix(r, "bytes=") || !strings.HasSuffix(r, "-") {
					t.Errorf("odd Range %q", r)
				}
			}
			assertNoTemp(t, local)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Pull err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "pull "+ref.Hash) {
					t.Errorf("error lacks context: %v", err)
				}
				if local.Has(ref.Hash) {
					t.Fatal("a failed pull installed the blob")
				}
				return
			}
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			f, err := local.Open(ref.Hash)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(f)
			f.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("pulled content differs")
			}
			if in := peerCounter(t, p.transfer, peerproto.DirectionIn, peerproto.ReasonTask); in < size {
				t.Errorf("in bytes = %v, want >= %d", in, size)
			}
			// A second pull is a no-op.
			n0 := 0
			for _, h := range hs {
				n, _ := h.seen()
				n0 += n
			}
			if err := p.Pull(ctx, ref, addrs, peerproto.ReasonTask); err != nil {
				t.Fatal(err)
			}
			n1 := 0
			for _, h := range hs {
				n, _ := h.seen()
				n1 += n
			}
			if n1 != n0 {
				t.Errorf("second pull made %d requests", n1-n0)
			}
		})
	}
}

func TestPeerPullConcurrentShareOneTransfer(t *testing.T) {
	data, ref := peerTestData(t, 1<<20)
	src := peerTestStore(t)
	if _, err := src.Put(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	h := newHolder(t, &holder{blobs: src})
	local := peerTestStore(t)
	p := newTestPeers(t, local, nil)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Pull(context.Background(), ref, []string{h.addr()}, peerproto.ReasonTask) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := h.seen(); n > 8 || !local.Has(ref.Hash) {
		t.Fatalf("requests %d, has %v", n, local.Has(ref.Hash))
	}
}

func TestPeerOpenSeekAndFailover(t *testing.T) {
	data, ref := peerTestData(t, 1<<20)
	src := peerTestStore(t)
	if _, err := src.Put(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	absent := newHolder(t, &holder{})
	good := newHolder(t, &holder{blobs: src})
	reg := prometheus.NewRegistry()
	p := newTestPeers(t, peerTestStore(t), reg)
	r, err := p.Open(context.Background(), ref, []string{absent.addr(), good.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, 1, 4095, 500_000, int64(len(data)) - 10} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+10]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", n, err)
	}
	if end, _ := r.Seek(0, io.SeekEnd); end != ref.Size {
		t.Fatalf("size %d", end)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative seek accepted")
	}
	if got := peerCounter(t, p.transfer, peerproto.DirectionIn, peerproto.ReasonServe); got < 50 {
		t.Fatalf("serve bytes %v", got)
	}
	// Nobody has it: the first Read says so.
	r2, err := p.Open(context.Background(), ref, []string{absent.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Read(make([]byte, 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read from nobody: %v", err)
	}
	if _, err := p.Open(context.Background(), ref, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open with no holders: %v", err)
	}
}

func TestPeerResponseErrors(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   error
		text   string
	}{
		{503, `{"error":{"code":"not_leader","message":"not the leader"}}`, ErrNotLeader, "not the leader"},
		{409, `{"error":{"code":"stale","message":"task t1 attempt 2 is not current"}}`, ErrStale, "stale assignment: task t1 attempt 2 is not current"},
		{409, `{"error":{"code":"conflict","message":"job exists"}}`, ErrConflict, "conflict: job exists"},
		{404, `{"error":{"code":"not_found","message":"no job x: not found"}}`, ErrNotFound, "no job x: not found"},
		{404, `404 page not found`, ErrNotFound, "404 page not found"},
		{400, `{"error":{"code":"invalid","message":"bad op"}}`, ErrInvalid, "bad op"},
		{422, `{"error":{"code":"checksum_mismatch","message":"checksum mismatch"}}`, ErrInvalid, "checksum mismatch"},
		{507, `{"error":{"code":"insufficient_storage","message":"insufficient storage: 1MiB more would not fit"}}`, ErrNoSpace, "1MiB more would not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			p := newTestPeers(t, peerTestStore(t), nil)
			_, err := p.Propose(context.Background(), strings.TrimPrefix(srv.URL, "http://"), []byte(`{}`))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.text)
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"key"}}`)
	}))
	defer srv.Close()
	p := newTestPeers(t, peerTestStore(t), nil)
	_, err := p.Status(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Status != 401 || pe.Code != "unauthorized" {
		t.Fatalf("err = %v", err)
	}
}

func TestPeerParseContentRange(t *testing.T) {
	for s, want := range map[string][3]int64{
		"bytes 10-99/100": {10, 100, 1},
		"bytes 0-0/1":     {0, 1, 1},
		"bytes */100":     {0, 0, 0},
		"items 1-2/3":     {0, 0, 0},
		"":                {0, 0, 0},
	} {
		start, total, ok := parseContentRange(s)
		if ok != (want[2] == 1) || (ok && (start != want[0] || total != want[1])) {
			t.Errorf("%q: %d %d %v", s, start, total, ok)
		}
	}
}
