package httpapi

import (
	"bytes"
	"strings"

	"github.com/gosty/gosty/cluster"
)

// isStoryboard reports whether rel is the job's storyboard track, whose
// cues name the sprite sheets by relative URL: under signed playback they
// are signed like a playlist's (other WebVTT files, captions, are served
// as they are).
func isStoryboard(j cluster.Job, rel string) bool { return j.Storyboard != "" && rel == j.Storyboard }

// signStoryboard makes every cue's sprite URL ("sprite-000.jpg#xywh=...")
// carry the playback query q, before its fragment.
func signStoryboard(b []byte, q string) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + 64*bytes.Count(b, []byte("#xywh=")))
	for line := range bytes.Lines(b) {
		body := bytes.TrimRight(line, "\r\n")
		u, frag, ok := strings.Cut(string(body), "#xywh=")
		if !ok || strings.Contains(u, "-->") {
			out.Write(line)
			continue
		}
		out.WriteString(withQuery(u, q) + "#xywh=" + frag)
		out.Write(line[len(body):])
	}
	return out.Bytes()
}
