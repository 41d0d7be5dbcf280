package node

import (
	"testing"
	"time"
)

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
