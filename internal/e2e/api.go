package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/nodetest"
)

// client bounds every request of the helpers, so that a node that hangs
// fails a wait at its deadline instead of blocking it.
var client = &http.Client{Timeout: 30 * time.Second}

// GetJSON decodes the JSON answer of GET url into v (an error for any
// status but 200).
func GetJSON(url string, v any) error { return GetJSONAuth(url, "", v) }

// GetJSONAuth is GetJSON with an API token ("" sends none).
func GetJSONAuth(url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Upload posts the file at path to base's job API as multipart (options
// first, as the API requires), fails the test unless it is answered 201,
// and returns the new job's ID.
func Upload(t testing.TB, base, path, options string) string {
	t.Helper()
	return UploadAuth(t, base, "", path, options)
}

// UploadAuth is Upload with an API token ("" sends none).
func UploadAuth(t testing.TB, base, token, path, options string) string {
	t.Helper()
	code, body := nodetest.UploadAuth(t, base, token, path, options)
	if code != http.StatusCreated {
		t.Fatalf("upload to %s: %d %s", base, code, body)
	}
	var j httpapi.JobView
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// SubmitURL asks base to make a job of the media at src (URL ingest) and
// returns the answer's status and job.
func SubmitURL(t testing.TB, base, src string) (int, httpapi.JobView) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"source_url": src})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(base+"/api/v1/jobs", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j httpapi.JobView
	json.NewDecoder(resp.Body).Decode(&j)
	return resp.StatusCode, j
}

// Job reads job id from base through the API's own type (a fresh value each
// time, so that omitted fields do not linger).
func Job(base, token, id string) (httpapi.JobView, error) {
	var j httpapi.JobView
	err := GetJSONAuth(base+"/api/v1/jobs/"+id, token, &j)
	return j, err
}

// Finished reports whether a job has reached an end state: done, failed
// or canceled.
func Finished(j httpapi.JobView) bool {
	return j.State == "done" || j.State == "failed" || j.State == "canceled"
}

// WaitJob waits up to d (failing the test with what, "" for "job <id> to
// end") until the first of bases that answers shows job id in a state that
// until accepts (nil: Finished), and returns that view.
func WaitJob(t testing.TB, d time.Duration, what, token, id string, until func(httpapi.JobView) bool, bases ...string) httpapi.JobView {
	t.Helper()
	if until == nil {
		until = Finished
	}
	if what == "" {
		what = "job " + id + " to end"
	}
	var j httpapi.JobView
	nodetest.WaitFor(t, d, what, func() bool {
		for _, b := range bases {
			if cur, err := Job(b, token, id); err == nil {
				j = cur
				return until(j)
			}
		}
		return false
	})
	return j
}

// WaitDone is WaitJob until Finished, failing the test unless the job is
// done.
func WaitDone(t testing.TB, d time.Duration, token, id string, bases ...string) httpapi.JobView {
	t.Helper()
	j := WaitJob(t, d, "", token, id, nil, bases...)
	if j.State != "done" {
		t.Fatalf("job %s ended %s: %s", id, j.State, j.Error)
	}
	return j
}

// FetchSum is the sha256 (hex) of GET url's body, failing the test on an
// error or a status but 200.
func FetchSum(t testing.TB, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Metrics is base's /metrics text.
func Metrics(t testing.TB, base string) string {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Encoded is how many of a job's chunks are encoded.
func Encoded(j httpapi.JobView) int {
	n := 0
	for _, c := range j.Chunks {
		if c.EncodedBy != "" {
			n++
		}
	}
	return n
}

// RunningOn reports whether some chunk of a job is being encoded on node.
func RunningOn(j httpapi.JobView, node string) bool {
	for _, c := range j.Chunks {
		if c.RunningOn == node {
			return true
		}
	}
	return false
}

// ReadFile is the content of the file at path, failing the test if it
// cannot be read.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
