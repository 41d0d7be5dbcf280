package node

import (
	"context"
	"testing"

	"github.com/gosty/gosty/node/egress"
	"github.com/gosty/gosty/node/webhook"
)

// FuzzParseJobOptions: any options bytes parse or are refused without a
// panic; accepted options have a valid priority, a non-negative ttl, and a
// callback check that never panics either.
func FuzzParseJobOptions(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"renditions":["720p"],"ttl":"1h","keep_source":false,"priority":"low","client_id":"a"}`,
		`{"callback_url":"http://127.0.0.1:9/x"}`, `{"callback_url":"http://[::1"}`, `{"ttl":"-1s"}`, `{"priority":7}`,
	} {
		f.Add([]byte(s))
	}
	names, _ := egress.Parse("--webhook-allow", "hooks.example:443")
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := parseJobOptions(raw)
		if err != nil {
			return
		}
		if o.ttl < 0 || o.ttl > MaxTTL {
			t.Fatalf("ttl %v accepted", o.ttl)
		}
		switch o.priority {
		case "", "high", "normal", "low":
		default:
			t.Fatalf("priority %q accepted", o.priority)
		}
		if o.CallbackURL != "" && len(o.CallbackURL) < 300 {
			// With names only in the list nothing is resolved (no DNS in a
			// fuzz run).
			_ = webhook.CheckURL(context.Background(), names, o.CallbackURL)
		}
	})
}
