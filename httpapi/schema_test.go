package httpapi

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/transcoder"
)

// jsonFields lists the JSON names of t's fields (embedded structs
// flattened) and whether each is always present (no omitempty or
// omitzero).
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && tag == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = !slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool { return o == "omitempty" || o == "omitzero" })
	}
	return out
}

// TestOpenAPISchemasMatchGoTypes: every schema of the job JSON (and the
// other bodies httpapi writes) lists exactly the fields of its Go type, and
// requires exactly those that are always written. A field added to a view
// without the document fails here, whether or not a test sends it.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := openAPIDocument(t)
	for name, typ := range map[string]reflect.Type{
		"Job":              reflect.TypeFor[JobView](),
		"JobList":          reflect.TypeFor[JobList](),
		"Outputs":          reflect.TypeFor[OutputsView](),
		"Live":             reflect.TypeFor[LiveView](),
		"Bytes":            reflect.TypeFor[BytesView](),
		"Chunk":            reflect.TypeFor[ChunkView](),
		"Rendition":        reflect.TypeFor[RenditionView](),
		"Quality":          reflect.TypeFor[cluster.Quality](),
		"Probe":            reflect.TypeFor[cluster.Probe](),
		"VideoStream":      reflect.TypeFor[cluster.VideoStream](),
		"AudioStream":      reflect.TypeFor[cluster.AudioStream](),
		"WebhookStatus":    reflect.TypeFor[cluster.WebhookStatus](),
		"PublishStatus":    reflect.TypeFor[cluster.PublishStatus](),
		"PublishedOutputs": reflect.TypeFor[PublishedView](),
		"JobOptions":       reflect.TypeFor[cluster.JobOptions](),
		"ScaleRequest":     reflect.TypeFor[scaleRequest](),
		"ScaleResponse":    reflect.TypeFor[scaleResponse](),
		"Error":            reflect.TypeFor[peerproto.ErrorBody](),
		"ClusterStatus":    reflect.TypeFor[ClusterStatus](),
		"Member":           reflect.TypeFor[MemberStatus](),
		"RaftServer":       reflect.TypeFor[RaftServer](),
		"Quorum":           reflect.TypeFor[QuorumStatus](),
	} {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("openapi.yaml has no schema %s (%s)", name, typ)
			continue
		}
		s := ref.Value
		fields := jsonFields(typ)
		var required []string
		for f, always := range fields {
			if s.Properties[f] == nil {
				t.Errorf("schema %s lacks %q, a field of %s", name, f, typ)
			}
			if always && name != "ScaleRequest" {
				required = append(required, f)
			}
		}
		for p := range s.Properties {
			if _, ok := fields[p]; !ok {
				t.Errorf("schema %s has %q, which %s does not", name, p, typ)
			}
		}
		if name == "ScaleRequest" {
			continue // replicas is a pointer so that its absence is seen: required
		}
		sort.Strings(required)
		got := slices.Sorted(slices.Values(s.Required))
		if !slices.Equal(got, required) {
			t.Errorf("schema %s requires %v; %s always writes %v", name, got, typ, required)
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("schema %s allows fields it does not list", name)
		}
	}
	// The upload's options: the transcoder's are all described (the job
	// policy ones are checked in package node).
	opts := doc.Components.Schemas["SubmitOptions"].Value
	for f := range jsonFields(reflect.TypeFor[transcoder.Options]()) {
		if opts.Properties[f] == nil {
			t.Errorf("schema SubmitOptions lacks %q, an option of transcoder.Options", f)
		}
	}
}

// errorCodePatterns find the error codes the public API's source writes:
// writeErrorCode's and tusError's code argument, and the codes files.go
// picks for ServeContent's errors.
var errorCodePatterns = []*regexp.Regexp{
	regexp.MustCompile(`writeErrorCode\(c, [^,]+, "([a-z_]+)"`),
	regexp.MustCompile(`tusError\([^,]+, "([a-z_]+)"`),
	regexp.MustCompile(`ErrorDetail\{Code: "([a-z_]+)"`),
	regexp.MustCompile(`code, msg = "([a-z_]+)"`),
}

// TestOpenAPIErrorCodes: the ErrorCode enum is exactly the codes the
// public API's source writes (internal*.go's are the peers' business), so a
// code added in a branch no test reaches fails here too.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := openAPIDocument(t)
	var enum []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "internal") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range errorCodePatterns {
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				codes = append(codes, m[1])
			}
		}
	}
	slices.Sort(codes)
	codes = slices.Compact(codes)
	slices.Sort(enum)
	if !slices.Equal(codes, enum) {
		t.Errorf("ErrorCode in openapi.yaml is %v; the source writes %v", enum, codes)
	}
}
