// Package k8s_test checks the kustomize base in this directory: against a
// real kube-apiserver and etcd (apiserver_test.go) and against the node's
// own flags, routes and limits (manifests_test.go).
//
// The control-plane tests need etcd (Debian's etcd-server), kubectl and the
// binaries `make kube-bins` builds into KUBE_BIN_DIR (default
// ~/.cache/gosty/kube-v1.37.2/bin). Without them they skip, unless
// GOSTY_REQUIRE_KUBE=1 (`make test-k8s`, CI), which makes a missing piece a
// failure.
package k8s_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gosty/gosty/internal/e2e"
	"sigs.k8s.io/yaml"
)

// kubeVersion must match KUBE_VERSION in the Makefile (the cache dir).
const kubeVersion = "v1.37.2"

// repoRoot is the repository (tests run in k8s/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// required reports whether missing tools fail the tests instead of
// skipping them.
func required() bool { return os.Getenv("GOSTY_REQUIRE_KUBE") == "1" }

// missing skips the test, or fails it under GOSTY_REQUIRE_KUBE=1.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required() {
		t.Fatalf("%s (GOSTY_REQUIRE_KUBE=1)", msg)
	}
	t.Skipf("%s; `make test-k8s` installs and builds what is missing", msg)
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not on PATH", name)
	}
	return p
}

// kubeBinDir is where `make kube-bins` puts kube-apiserver and the CRDs.
func kubeBinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KUBE_BIN_DIR"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		missing(t, "no cache dir for the kube binaries: %v", err)
	}
	return filepath.Join(cache, "gosty", "kube-"+kubeVersion, "bin")
}

// tree is a copy of the manifests (k8s/ and dashboards/) in a temp dir, so
// that the deploy steps (deployDoc) can write k8s/secrets/ without touching the
// repository.
type tree struct {
	dir string
}

func newTree(t testing.TB) *tree {
	t.Helper()
	root := repoRoot(t)
	dst := t.TempDir()
	for _, sub := range []string{"k8s", "dashboards"} {
		src := filepath.Join(root, sub)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				switch rel {
				case filepath.Join("k8s", "tools"), filepath.Join("k8s", "secrets"):
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if strings.HasSuffix(path, ".go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return &tree{dir: dst}
}

// writeKeys makes the Secret's files as deployDoc's "keys" step does.
func (tr *tree) writeKeys(t testing.TB) {
	t.Helper()
	dir := filepath.Join(tr.dir, "k8s", "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster-key", "gossip-key", "api-token"} {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, k), []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// kustomize renders one kustomization of the tree with kubectl.
func (tr *tree) kustomize(t testing.TB, kubectl, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Dir = tr.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	return out
}

// object is one rendered manifest: its kind, name and raw JSON.
type object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	JSON       []byte
}

// splitObjects cuts a multi-document YAML stream into objects.
func splitObjects(t testing.TB, stream []byte) []object {
	t.Helper()
	var out []object
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(stream), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, doc)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(j, &meta); err != nil {
			t.Fatal(err)
		}
		out = append(out, object{meta.APIVersion, meta.Kind, meta.Metadata.Name, meta.Metadata.Namespace, j})
	}
	return out
}

// deployDoc is the document (relative to the repository) whose section
// "Deploy on Kubernetes" holds the deploy steps the tests run verbatim.
const deployDoc = "docs/operating.md"

// deployBlocks returns deployDoc's shell blocks marked
// `<!-- k8s-test: NAME -->`, by name: the steps the tests run verbatim.
func deployBlocks(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), deployDoc))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	marker := regexp.MustCompile(`^<!-- k8s-test: ([a-z-]+) -->$`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	var name string
	var inBlock bool
	var body strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inBlock && line == "```":
			blocks[name] = body.String()
			inBlock, name = false, ""
			body.Reset()
		case inBlock:
			body.WriteString(line + "\n")
		case name != "" && line == "```sh":
			inBlock = true
		case name != "" && strings.TrimSpace(line) != "":
			t.Fatalf("%s: marker k8s-test: %s must be followed by a ```sh block", deployDoc, name)
		default:
			if m := marker.FindStringSubmatch(line); m != nil {
				if _, dup := blocks[m[1]]; dup {
					t.Fatalf("%s: two blocks named %s", deployDoc, m[1])
				}
				name = m[1]
			}
		}
	}
	if inBlock || name != "" {
		t.Fatalf("%s: block %s is not closed", deployDoc, name)
	}
	return blocks
}

// deploySteps says which tests run each marked block of deployDoc's
// deploy section: every marked block must be run by one.
var deploySteps = map[string][]string{
	"keys":       {"TestAPIServer", "TestStatefulSet"},
	"apply":      {"TestAPIServer", "TestStatefulSet"},
	"extras":     {"TestAPIServer"},
	"scale":      {"TestAPIServer", "TestStatefulSet"},
	"scale-down": {"TestStatefulSet"},
}

// TestDeployStepsAreTested: every marked deploy block of deployDoc is run
// by a test, and every block a test runs is there.
func TestDeployStepsAreTested(t *testing.T) {
	blocks := deployBlocks(t)
	for name := range blocks {
		if len(deploySteps[name]) == 0 {
			t.Errorf("%s: block %q is run by no test", deployDoc, name)
		}
	}
	for name := range deploySteps {
		if _, ok := blocks[name]; !ok {
			t.Errorf("%s has no block marked <!-- k8s-test: %s -->", deployDoc, name)
		}
	}
}

// TestMain removes the gosty binary the tests built (e2e.Binary) when they
// end.
func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
