package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestWebhookAllowList(t *testing.T) {
	a, err := parseAllowList("hooks.example.com:443, 127.0.0.1:8000, 10.1.0.0/16, [::1]:9000")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/x", true},
		{"https://HOOKS.example.com./x", true},
		{"http://hooks.example.com/x", false}, // port 80
		{"http://127.0.0.1:8000/x", true},
		{"http://127.0.0.1:8001/x", false},
		{"http://10.1.2.3/x", true},
		{"http://10.2.0.1/x", false},
		{"http://[::1]:9000/x", true},
		{"ftp://127.0.0.1:8000/x", false},
		{"http://user:pw@127.0.0.1:8000/x", false},
		{"/relative", false},
	} {
		err := checkCallbackURL(ctx, a, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	if err := checkCallbackURL(ctx, &allowList{}, "http://127.0.0.1/"); err == nil || !strings.Contains(err.Error(), "--webhook-allow") {
		t.Errorf("no allow list: %v", err)
	}
	for _, bad := range []string{"a b", "host:0", "host:x"} {
		if _, err := parseAllowList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !a.ipAllowed(netip.MustParseAddr("::ffff:10.1.0.1"), "1") {
		t.Error("a v4-mapped address is not matched")
	}
}

// The client dials only allowed addresses and follows no redirect.
func TestWebhookClientDialsOnlyAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	allowed, _ := parseAllowList("127.0.0.1:" + port)
	resp, err := webhookClient(allowed, 5*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
	other, _ := parseAllowList("127.0.0.1:1")
	if _, err := webhookClient(other, 5*time.Second).Post(srv.URL, "application/json", nil); err == nil || !strings.Contains(err.Error(), "not in --webhook-allow") {
		t.Fatalf("dial outside the allow list: %v", err)
	}
	// A name resolving to an allowed IP passes only through a prefix.
	name := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	prefix, _ := parseAllowList("127.0.0.0/8")
	if resp, err := webhookClient(prefix, 5*time.Second).Post(name, "application/json", nil); err != nil {
		t.Fatalf("name inside an allowed prefix: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestParseJobOptions(t *testing.T) {
	o, err := parseJobOptions([]byte(`{"renditions":[],"callback_url":"http://x/"}`))
	if err != nil || o.Renditions != nil || o.CallbackURL != "http://x/" {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseJobOptions([]byte(`{"ttl":"90m","keep_source":false}`))
	if err != nil || !o.hasTTL || o.ttl != 90*time.Minute || o.KeepSource == nil || *o.KeepSource {
		t.Fatalf("ttl/keep_source: %+v %v", o, err)
	}
	if o, err = parseJobOptions([]byte(`{"ttl":"0"}`)); err != nil || !o.hasTTL || o.ttl != 0 {
		t.Fatalf("ttl 0: %+v %v", o, err)
	}
	if o, err = parseJobOptions([]byte(`{"priority":"high","client_id":"team-a@x"}`)); err != nil || o.priority != "high" || o.ClientID != "team-a@x" {
		t.Fatalf("priority/client_id: %+v %v", o, err)
	}
	if o, _ = parseJobOptions(nil); o.priority != "" {
		t.Fatalf("no options: priority %q", o.priority)
	}
	for _, bad := range []string{`{"priority":"urgent"}`, `{"client_id":"a b"}`, `{"callbackurl":"x"}`, `{"chunk_seconds":1000}`, `{} {}`, `{"ttl":"-1h"}`, `{"ttl":"soon"}`, `{"ttl":5}`} {
		if _, err := parseJobOptions([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestWebhookBackoff(t *testing.T) {
	w := &notifier{backoff: time.Second, maxBackoff: 10 * time.Second}
	for n, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if got := w.due(n); got != want {
			t.Errorf("due(%d) = %v, want %v", n, got, want)
		}
	}
}
