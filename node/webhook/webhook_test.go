package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/node/egress"
)

// The webhook's own messages; the list's rules are egress's tests.
func TestWebhookCallbackURL(t *testing.T) {
	ctx := context.Background()
	a := wallow("hooks.example.com:443, 127.0.0.1:8000")
	if err := CheckURL(ctx, a, "http://127.0.0.1:8000/x"); err != nil {
		t.Error(err)
	}
	if err := CheckURL(ctx, a, "http://127.0.0.1:8001/x"); err == nil || !strings.Contains(err.Error(), "not in --webhook-allow") {
		t.Errorf("unlisted port: %v", err)
	}
	if err := CheckURL(ctx, wallow(""), "http://127.0.0.1/"); err == nil || !strings.Contains(err.Error(), "--webhook-allow") {
		t.Errorf("no allow list: %v", err)
	}
}

func wallow(s string) *egress.AllowList {
	a, err := egress.Parse("--webhook-allow", s)
	if err != nil {
		panic(err)
	}
	return a
}

// The client dials only allowed addresses and follows no redirect.
func TestWebhookClientDialsOnlyAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	allowed := wallow("127.0.0.1:" + port)
	resp, err := webhookClient(allowed, 5*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
	other := wallow("127.0.0.1:1")
	if _, err := webhookClient(other, 5*time.Second).Post(srv.URL, "application/json", nil); err == nil || !strings.Contains(err.Error(), "not in --webhook-allow") {
		t.Fatalf("dial outside the allow list: %v", err)
	}
	// A name resolving to an allowed IP passes only through a prefix.
	name := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	prefix := wallow("127.0.0.0/8")
	if resp, err := webhookClient(prefix, 5*time.Second).Post(name, "application/json", nil); err != nil {
		t.Fatalf("name inside an allowed prefix: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestWebhookBackoff(t *testing.T) {
	w := &Notifier{backoff: time.Second, maxBackoff: 10 * time.Second}
	for n, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		if got := w.due(n); got != want {
			t.Errorf("due(%d) = %v, want %v", n, got, want)
		}
	}
}
