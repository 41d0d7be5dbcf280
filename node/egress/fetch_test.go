package egress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dropWriter cuts the connection once limit bytes of the body are out.
type dropWriter struct {
	http.ResponseWriter
	left int
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if len(p) > d.left {
		p = p[:d.left]
	}
	n, _ := d.ResponseWriter.Write(p)
	d.left -= n
	if d.left == 0 {
		d.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	return n, nil
}

// source serves data; the first drops answers break off after cut bytes.
// ranges says whether it honours Range (http.ServeContent) or always
// sends the whole body.
func source(t *testing.T, data []byte, drops int, cut int, ranges bool) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	var calls, ranged atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		var out http.ResponseWriter = w
		if int(n) <= drops {
			out = &dropWriter{ResponseWriter: w, left: cut}
		}
		w.Header().Set("ETag", `"v1"`)
		if ranges {
			http.ServeContent(out, r, "src.mp4", time.Unix(1e9, 0), bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		out.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, &ranged
}

func fetcher(t *testing.T, srv *httptest.Server) *Fetcher {
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	a, err := Parse("--ingest-allow", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Allow: a, Backoff: time.Millisecond, Timeout: 5 * time.Second}
}

func fetchAll(t *testing.T, f *Fetcher, raw string) ([]byte, error) {
	t.Helper()
	u, _ := url.Parse(raw)
	s, err := f.Open(context.Background(), u)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return io.ReadAll(s)
}

func TestFetchResumesWithRange(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	srv, calls, ranged := source(t, data, 2, 300<<10, true)
	got, err := fetchAll(t, fetcher(t, srv), srv.URL+"/src.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want the %d served", len(got), len(data))
	}
	if calls.Load() != 3 || ranged.Load() != 2 {
		t.Fatalf("%d requests, %d ranged; want 3 and 2", calls.Load(), ranged.Load())
	}
}

func TestFetchRestartsWithoutRanges(t *testing.T) {
	data := bytes.Repeat([]byte("xyz"), 100<<10)
	srv, calls, _ := source(t, data, 1, 1000, false)
	got, err := fetchAll(t, fetcher(t, srv), srv.URL+"/src.mp4")
	if err != nil || !bytes.Equal(got, data) || calls.Load() != 2 {
		t.Fatalf("err %v, %d of %d bytes, %d requests", err, len(got), len(data), calls.Load())
	}
	// Restarts are bounded.
	srv, calls, _ = source(t, data, 100, 1000, false)
	_, err = fetchAll(t, fetcher(t, srv), srv.URL+"/src.mp4")
	var fe *FetchError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "does not resume") || calls.Load() != 4 {
		t.Fatalf("endless drops without ranges: %v after %d requests", err, calls.Load())
	}
	// So are resumes.
	srv, calls, _ = source(t, data, 100, 1000, true)
	_, err = fetchAll(t, fetcher(t, srv), srv.URL+"/src.mp4")
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "dropped") || calls.Load() != 6 {
		t.Fatalf("endless drops with ranges: %v after %d requests", err, calls.Load())
	}
}

func TestFetchSizeLimit(t *testing.T) {
	data := bytes.Repeat([]byte("a"), 10000)
	srv, _, _ := source(t, data, 0, 0, true)
	f := fetcher(t, srv)
	f.MaxBytes = 9999
	var tl *TooLargeError
	if _, err := fetchAll(t, f, srv.URL+"/"); !errors.As(err, &tl) || tl.Size != 10000 {
		t.Fatalf("declared too large: %v", err)
	}
	// Without a Content-Length the bytes are counted.
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			w.Write(data[:1000])
			w.(http.Flusher).Flush()
		}
	}))
	defer chunked.Close()
	f = fetcher(t, chunked)
	f.MaxBytes = 9999
	if _, err := fetchAll(t, f, chunked.URL+"/"); !errors.As(err, &tl) {
		t.Fatalf("counted too large: %v", err)
	}
}

func TestFetchRedirectsAndErrors(t *testing.T) {
	var hops atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case r.URL.Path == "/private":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case r.URL.Path == "/ok":
			http.Redirect(w, r, "/media", http.StatusMovedPermanently)
		case r.URL.Path == "/media":
			w.Write([]byte("media"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := fetcher(t, srv)
	if got, err := fetchAll(t, f, srv.URL+"/ok"); err != nil || string(got) != "media" {
		t.Fatalf("redirect within the list: %q %v", got, err)
	}
	if _, err := fetchAll(t, f, srv.URL+"/loop"); err == nil || !strings.Contains(err.Error(), "more than 5 redirects") || hops.Load() != 6 {
		t.Fatalf("redirect loop: %v after %d hops", err, hops.Load())
	}
	if _, err := fetchAll(t, f, srv.URL+"/private"); err == nil || !strings.Contains(err.Error(), "169.254.169.254") || !strings.Contains(err.Error(), "not in --ingest-allow") {
		t.Fatalf("redirect to the metadata address: %v", err)
	}
	if _, err := fetchAll(t, f, srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing source: %v", err)
	}
	// An error never repeats the URL's query (a presigned URL's secret).
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if _, err := fetchAll(t, fetcher(t, closed), closed.URL+"/x?sig=secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable source: %v", err)
	}
}

// A redirect from https to http is refused, even to an allowed address.
func TestFetchRefusesDowngrade(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("media")) }))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			http.Redirect(w, r, "/media", http.StatusFound) // https → https
			return
		}
		if r.URL.Path == "/media" {
			w.Write([]byte("secure media"))
			return
		}
		http.Redirect(w, r, plain.URL+"/", http.StatusFound)
	}))
	defer secure.Close()
	a, _ := Parse("--ingest-allow", "127.0.0.1")
	f := &Fetcher{Allow: a, Timeout: 5 * time.Second, tls: secure.Client().Transport.(*http.Transport).TLSClientConfig}
	if got, err := fetchAll(t, f, secure.URL+"/up"); err != nil || string(got) != "secure media" {
		t.Fatalf("https redirect: %q %v", got, err)
	}
	if _, err := fetchAll(t, f, secure.URL+"/down"); err == nil || !strings.Contains(err.Error(), "redirect from https to http refused") {
		t.Fatalf("downgrade: %v", err)
	}
}
