package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A JSON submit hands the URL and options to SubmitURL and answers 202
// with the ingesting job; the contract handler checks both against the
// OpenAPI document.
func TestSubmitURL(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"source_url":"https://media.example/in/clip.mp4?X-Amz-Signature=secret","options":{"renditions":["360p"]}}`
	resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var v JobView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.State != "ingesting" || v.SourceURL != "https://media.example/in/clip.mp4" || resp.Header.Get("Location") != "/api/v1/jobs/"+v.ID {
		t.Fatalf("answer %+v, Location %q", v, resp.Header.Get("Location"))
	}
	subs := e.jobs.submissions()
	if len(subs) != 1 || string(subs[0].options) != `{"renditions":["360p"]}` || !strings.Contains(subs[0].filename, "secret") {
		t.Fatalf("submissions %+v", subs)
	}
	for _, bad := range []string{`{}`, `{"source_url":"x","extra":1}`, `{"source_url":`, `{"source_url":"x"} {}`, `{"source_url":"ftp://x/"}`} {
		resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs", strings.NewReader(bad), map[string]string{"Content-Type": "application/json"})
		if code, _ := errCode(t, b); resp.StatusCode != http.StatusBadRequest || code != "invalid_request" {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, b)
		}
	}
}

// A URL submit is a write: with API tokens it needs one, like an upload,
// and nothing reaches SubmitURL without it.
func TestSubmitURLNeedsToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.APIToken = "s3cret" })
	body := `{"source_url":"https://media.example/clip.mp4"}`
	for _, hdr := range []map[string]string{
		{"Content-Type": "application/json"},
		{"Content-Type": "application/json", "Authorization": "Bearer wrong"},
	} {
		resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs", strings.NewReader(body), hdr)
		if code, _ := errCode(t, b); resp.StatusCode != http.StatusUnauthorized || code != "unauthorized" {
			t.Fatalf("%v: %d %s", hdr, resp.StatusCode, b)
		}
	}
	if subs := e.jobs.submissions(); len(subs) != 0 {
		t.Fatalf("submitted without a token: %+v", subs)
	}
	resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs", strings.NewReader(body),
		map[string]string{"Content-Type": "application/json", "Authorization": "Bearer s3cret"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with the token: %d %s", resp.StatusCode, b)
	}
}
