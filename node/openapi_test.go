package node

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gosty/gosty/httpapi"
)

func openAPISchema(t *testing.T, name string) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas[name]
	if ref == nil {
		t.Fatalf("openapi.yaml has no schema %s", name)
	}
	return ref.Value
}

func visit(t *testing.T, s *openapi3.Schema, v any) error {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return s.VisitJSON(doc, openapi3.EnableJSONSchema2020())
}

// TestClusterStatusMatchesOpenAPI: GET /api/v1/cluster as this package
// writes it, every field set, is what openapi.yaml describes (which
// allows no field it does not list), and so is a lone node's.
func TestClusterStatusMatchesOpenAPI(t *testing.T) {
	s := openAPISchema(t, "ClusterStatus")
	full := httpapi.ClusterStatus{Node: "n1", Leader: "n1", Term: 3, LogVersion: 2,
		Members: []httpapi.MemberStatus{{Name: "n1", ID: "id1", State: "alive", RaftRole: "leader", Voter: true, Leaving: true,
			Slots: 2, TasksActive: 1, Version: "v1", Since: time.Now(), HTTP: "10.0.0.1:8080",
			Disk: &httpapi.DiskStatus{FreeBytes: 1, SizeBytes: 2, ReserveBytes: 3, Full: true}}},
		Raft:     []httpapi.RaftServer{{ID: "id1", Name: "n1", Suffrage: "voter", Address: "10.0.0.1:7947"}},
		Quorum:   httpapi.QuorumStatus{Voters: 1, HealthyVoters: 1, Needed: 1, FailureTolerance: 0},
		Insecure: []string{"tls"}}
	for name, st := range map[string]httpapi.ClusterStatus{"full": full, "empty": {}} {
		if err := visit(t, s, st); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSubmitOptionsMatchOpenAPI: the upload's options in openapi.yaml are
// exactly the fields parseJobOptions takes, and it agrees with the parser
// on a few accepted and refused ones.
func TestSubmitOptionsMatchOpenAPI(t *testing.T) {
	s := openAPISchema(t, "SubmitOptions")
	var fields []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous {
				walk(f.Type)
			} else if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "-" {
				fields = append(fields, name)
			}
		}
	}
	walk(reflect.TypeFor[jobOptions]())
	var props []string
	for p := range s.Properties {
		props = append(props, p)
	}
	slices.Sort(fields)
	slices.Sort(props)
	if !slices.Equal(fields, props) {
		t.Errorf("SubmitOptions has %v; parseJobOptions takes %v", props, fields)
	}
	for _, raw := range []string{
		`{}`, `{"codec":"H265","renditions":["1080p","720p@2500k"],"chunk_seconds":4,"preset":"fast","rate_control":"capped_crf"}`,
		`{"ttl":"72h","keep_source":false,"priority":"low","client_id":"team-a@x:1"}`, `{"renditions":[],"priority":""}`,
		`{"unknown":1}`, `{"priority":"urgent"}`, `{"client_id":"a b"}`, `{"preset":"turbo"}`, `{"chunk_seconds":90}`,
		`{"renditions":["hd"]}`, `{"keep_source":"no"}`,
	} {
		_, perr := parseJobOptions([]byte(raw))
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatal(err)
		}
		serr := s.VisitJSON(v, openapi3.EnableJSONSchema2020())
		if (perr == nil) != (serr == nil) {
			t.Errorf("%s: parseJobOptions says %v, openapi.yaml %v", raw, perr, serr)
		}
	}
}
