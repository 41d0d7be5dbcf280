// Package docs holds gosty's documentation by audience (see ../README.md);
// its only code is this test, which keeps the links between the documents
// true.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// checked are the documents whose relative links and #anchors must resolve:
// the README, every document here, and the other READMEs they link to.
var checked = []string{
	"README.md",
	"docs/*.md",
	"k8s/README.md",
	"dashboards/README.md",
	"BENCHMARKS.md",
}

// TestLinksResolve: every relative link of the checked documents names a
// file or directory of the repository, and every #anchor a heading of the
// document it points into (as GitHub makes anchors from headings).
func TestLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, g := range checked {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil || len(m) == 0 {
			t.Fatalf("no document matches %s", g)
		}
		files = append(files, m...)
	}
	links := 0
	for _, f := range files {
		for _, p := range brokenLinks(t, f, &links) {
			rel, _ := filepath.Rel(root, f)
			t.Errorf("%s: %s", rel, p)
		}
	}
	if links < 50 {
		t.Errorf("only %d relative links found: is the link pattern still right?", links)
	}
}

// TestBrokenLinksAreFound: the checker itself reports a missing file, a
// missing anchor in another document and in the same one, and accepts
// what exists.
func TestBrokenLinksAreFound(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.md", "# B\n\n## The way out to S3\n\n#### From a bucket: `s3://bucket/key`\n")
	write("a.md", "# A `x`\n\n"+
		"[ok](b.md#the-way-out-to-s3) [ok](b.md#from-a-bucket-s3bucketkey) [ok](#a-x) [ok](https://example.com/#nope)\n"+
		"[bad](c.md) [bad](b.md#nowhere) [bad](#nowhere) `[not a link](d.md)`\n\n"+
		"```sh\n[in a block](e.md)\n```\n")
	n := 0
	got := brokenLinks(t, filepath.Join(dir, "a.md"), &n)
	if len(got) != 3 || n != 6 {
		t.Fatalf("broken links %q of %d relative links; want the 3 marked bad of 6", got, n)
	}
}

var (
	linkRE   = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	codeRE   = regexp.MustCompile("`[^`]*`")
	headRE   = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	mdLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// brokenLinks returns what is wrong with the relative links of the
// Markdown file path, counting the links it checks in *n.
func brokenLinks(t *testing.T, path string, n *int) []string {
	t.Helper()
	var out []string
	for _, target := range linkTargets(t, path) {
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		*n++
		file, anchor, _ := strings.Cut(target, "#")
		dest := path
		if file != "" {
			dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			if _, err := os.Stat(dest); err != nil {
				out = append(out, target+": no such file")
				continue
			}
		}
		if anchor == "" {
			continue
		}
		if !strings.HasSuffix(dest, ".md") {
			out = append(out, target+": an anchor into a file that is not Markdown")
			continue
		}
		if !anchors(t, dest)[anchor] {
			out = append(out, target+": no such heading")
		}
	}
	return out
}

// lines returns the lines of a Markdown file outside fenced code blocks.
func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fenced := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// linkTargets returns the targets of the inline links of path, outside
// code blocks and code spans.
func linkTargets(t *testing.T, path string) []string {
	var out []string
	for _, l := range lines(t, path) {
		// A code span inside a link's text (“[`x`](y)”) leaves the link.
		l = mdLinkRE.ReplaceAllStringFunc(l, func(s string) string {
			return strings.ReplaceAll(s, "`", "")
		})
		for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(l, ""), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// anchors returns the anchors GitHub gives the headings of path: lower
// case, punctuation dropped, spaces turned to hyphens, repeats numbered.
func anchors(t *testing.T, path string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range lines(t, path) {
		m := headRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		text := mdLinkRE.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if k := seen[a]; k > 0 {
			out[a+"-"+strconv.Itoa(k)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}
