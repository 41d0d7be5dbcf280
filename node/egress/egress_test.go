package egress

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAllowListURLs(t *testing.T) {
	a, err := Parse("--ingest-allow", "media.example.com:443, 127.0.0.1:8000, 10.1.0.0/16, [::1]:9000, 0.0.0.0/0, ::/0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://media.example.com/x", true},
		{"https://MEDIA.example.com./x", true},
		{"http://127.0.0.1:8000/x", true},           // listed exactly
		{"http://127.0.0.1:8001/x", false},          // loopback: 0.0.0.0/0 does not open it
		{"http://127.0.0.2/x", false},               // loopback
		{"http://169.254.169.254/latest/", false},   // metadata
		{"http://[fe80::1]/x", false},               // IPv6 link-local
		{"http://[fd00::1]/x", false},               // IPv6 ULA
		{"http://[::ffff:169.254.169.254]/", false}, // v4-mapped metadata
		{"http://192.168.1.1/x", false},             // RFC 1918
		{"http://172.16.0.1/x", false},
		{"http://10.1.2.3/x", true}, // listed prefix inside 10/8
		{"http://10.2.0.1/x", false},
		{"http://100.64.0.1/x", false}, // CGNAT
		{"http://8.8.8.8/x", true},     // public, through 0.0.0.0/0
		{"http://[2001:db8::1]/x", true},
		{"http://[::1]:9000/x", true},
		{"http://[::1]:9001/x", false},
		{"ftp://8.8.8.8/x", false},
		{"http://user:pw@8.8.8.8/x", false},
		{"/relative", false},
	} {
		_, err := a.CheckURL(ctx, "source_url", tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	if _, err := (&AllowList{flag: "--ingest-allow"}).CheckURL(ctx, "source_url", "http://8.8.8.8/"); err == nil || !strings.Contains(err.Error(), "--ingest-allow") {
		t.Errorf("empty list: %v", err)
	}
	for _, bad := range []string{"a b", "host:0", "host:x"} {
		if _, err := Parse("--x", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !a.IPAllowed(netip.MustParseAddr("::ffff:10.1.0.1"), "1") {
		t.Error("a v4-mapped address is not matched")
	}
	lo, _ := Parse("--x", "127.0.0.0/8, 169.254.169.254, fd00::/8")
	for _, ip := range []string{"127.0.0.5", "169.254.169.254", "fd00::5"} {
		if !lo.IPAllowed(netip.MustParseAddr(ip), "80") {
			t.Errorf("%s listed from inside special space, refused", ip)
		}
	}
	if lo.IPAllowed(netip.MustParseAddr("169.254.1.1"), "80") {
		t.Error("a neighbour of a listed special address allowed")
	}
}

// The dial checks the resolved address of every connection: a redirect to
// an address outside the list fails at its dial.
func TestDialChecksEveryConnection(t *testing.T) {
	var target string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	target = "http://127.0.0.2:" + port + "/" // loopback, not listed
	a, _ := Parse("--ingest-allow", "127.0.0.1:"+port)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: a.DialContext(&net.Dialer{})}}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, err = c.Get(srv.URL + "/away")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.2") || !strings.Contains(err.Error(), "not in --ingest-allow") {
		t.Fatalf("redirect to an unlisted address: %v", err)
	}
	// A name resolving to an allowed IP passes through a prefix.
	p, _ := Parse("--x", "127.0.0.0/8")
	c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: p.DialContext(&net.Dialer{})}}
	resp, err = c.Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("name inside an allowed prefix: %v", err)
	}
	resp.Body.Close()
}
