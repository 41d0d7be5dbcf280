package transcoder

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SubtitleInput is one subtitle track for Package: a WebVTT file on the
// outputs' timeline (ExtractSubtitles, or an uploaded sidecar re-emitted
// by WebVTT) and how manifests name it.
type SubtitleInput struct {
	Path     string
	Language string // BCP 47; "" unknown
	Name     string // "" = SubtitleName's choice
	Default  bool
	Forced   bool
}

// packageSubtitles publishes the subtitle tracks of a package whose video
// and audio are written: per track the sidecar SubtitleFile, a segmented
// WebVTT media playlist on the video's own segment grid (read from the
// first video playlist), an entry of the HLS master's "subs" group and a
// DASH text adaptation set pointing at the sidecar.
func packageSubtitles(outDir string, subs []SubtitleInput, seg, duration float64) error {
	if len(subs) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(outDir, "subs"), 0o755); err != nil {
		return fmt.Errorf("subtitles: %w", err)
	}
	edges := videoSegmentEdges(filepath.Join(outDir, "media_0.m3u8"))
	if edges == nil {
		edges = uniformEdges(seg, duration)
	}
	variants := make([]SubtitleVariant, len(subs))
	sets := make([]string, len(subs))
	seenDefault := false
	names := map[string]bool{}
	for n, s := range subs {
		cues, err := readVTT(s.Path)
		if err != nil {
			return fmt.Errorf("subtitle track %d: %w", n, err)
		}
		base := subtitleBase(n, s.Language)
		sidecar := WebVTT(cues)
		if err := os.WriteFile(filepath.Join(outDir, filepath.FromSlash(SubtitleFile(n, s.Language))), sidecar, 0o644); err != nil {
			return fmt.Errorf("subtitle track %d: %w", n, err)
		}
		var pl strings.Builder
		segs := SegmentCues(cues, edges)
		target := 1.0
		for k := range segs {
			target = max(target, math.Ceil(edges[k+1]-edges[k]-0.0005))
		}
		fmt.Fprintf(&pl, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n", int(target))
		for k, sc := range segs {
			name := fmt.Sprintf("%s-%05d.vtt", base, k)
			if err := os.WriteFile(filepath.Join(outDir, "subs", name), WebVTT(sc, hlsTimestampMap), 0o644); err != nil {
				return fmt.Errorf("subtitle track %d: %w", n, err)
			}
			fmt.Fprintf(&pl, "#EXTINF:%.3f,\n%s\n", edges[k+1]-edges[k], name)
		}
		pl.WriteString("#EXT-X-ENDLIST\n")
		if err := os.WriteFile(filepath.Join(outDir, "subs", base+".m3u8"), []byte(pl.String()), 0o644); err != nil {
			return fmt.Errorf("subtitle track %d: %w", n, err)
		}
		name := s.Name
		if name == "" {
			name = SubtitleName(n, "", s.Language)
		}
		for k, base := 2, name; names[name]; k++ { // NAME is unique in a group
			name = fmt.Sprintf("%s (%d)", base, k)
		}
		names[name] = true
		def := s.Default && !seenDefault // at most one DEFAULT=YES per group
		seenDefault = seenDefault || def
		variants[n] = SubtitleVariant{URI: "subs/" + base + ".m3u8", Name: name, Language: s.Language, Default: def, Forced: s.Forced}
		sets[n] = dashTextSet(n, s, name, SubtitleFile(n, s.Language), len(sidecar), duration)
	}
	if err := addMasterSubtitles(filepath.Join(outDir, hlsMaster), variants); err != nil {
		return err
	}
	return addMPDTextSets(filepath.Join(outDir, dashManifest), sets)
}

// videoSegmentEdges reads a video media playlist's segment boundaries
// (0, then the running sum of its EXTINF durations); nil if unreadable.
func videoSegmentEdges(path string) []float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	edges := []float64{0}
	for _, l := range strings.Split(string(b), "\n") {
		d, ok := strings.CutPrefix(strings.TrimSpace(l), "#EXTINF:")
		if !ok {
			continue
		}
		d, _, _ = strings.Cut(d, ",")
		v, err := strconv.ParseFloat(d, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return nil
		}
		edges = append(edges, edges[len(edges)-1]+v)
	}
	if len(edges) < 2 {
		return nil
	}
	return edges
}

// uniformEdges is a grid of seg-second segments over duration.
func uniformEdges(seg, duration float64) []float64 {
	if seg <= 0 {
		seg = DefaultSegmentSeconds
	}
	duration = max(duration, seg)
	edges := []float64{0}
	for t := seg; t < duration-0.001; t += seg {
		edges = append(edges, t)
	}
	return append(edges, duration)
}

// addMasterSubtitles adds the subtitle group to an HLS master playlist,
// however it was written: the EXT-X-MEDIA lines MasterPlaylist writes
// for the tracks go before the first variant, and every variant names
// the group.
func addMasterSubtitles(path string, subs []SubtitleVariant) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("hls master: %w", err)
	}
	var media []string
	for _, l := range strings.Split(string(MasterPlaylist(Master{Subtitles: subs})), "\n") {
		if strings.HasPrefix(l, "#EXT-X-MEDIA:TYPE=SUBTITLES") {
			media = append(media, l)
		}
	}
	var out []string
	added := false
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF:") {
			if !added {
				out = append(out, media...)
				added = true
			}
			if !strings.Contains(l, "SUBTITLES=") {
				l += `,SUBTITLES="subs"`
			}
		}
		out = append(out, l)
	}
	if !added {
		return fmt.Errorf("hls master %s has no variant", path)
	}
	return writeFileAtomic(path, []byte(strings.Join(out, "\n")+"\n"))
}

// dashTextSet is a DASH adaptation set for subtitle track n: WebVTT
// served whole from its sidecar (BaseURL), with its language, a role
// (forced tracks as DASH-IF's "forced-subtitle") and a label.
func dashTextSet(n int, s SubtitleInput, name, sidecar string, size int, duration float64) string {
	lang := s.Language
	if lang == "" {
		lang = "und"
	}
	role := "subtitle"
	if s.Forced {
		role = "forced-subtitle"
	}
	bw := 256
	if duration > 0 {
		bw = max(bw, int(float64(size)*8/duration))
	}
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(name))
	return fmt.Sprintf("\t\t<AdaptationSet id=\"%d\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"%s\">\n"+
		"\t\t\t<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"%s\"/>\n"+
		"\t\t\t<Label>%s</Label>\n"+
		"\t\t\t<Representation id=\"text%d\" bandwidth=\"%d\">\n"+
		"\t\t\t\t<BaseURL>%s</BaseURL>\n"+
		"\t\t\t</Representation>\n"+
		"\t\t</AdaptationSet>\n", 1000+n, lang, role, esc.String(), n, bw, sidecar)
}

// addMPDTextSets puts the text adaptation sets at the end of the MPD's
// (only) period.
func addMPDTextSets(path string, sets []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("mpd: %w", err)
	}
	i := bytes.LastIndex(b, []byte("</Period>"))
	if i < 0 {
		return fmt.Errorf("mpd %s has no period", path)
	}
	j := bytes.LastIndexByte(b[:i], '\n') + 1 // keep the closing tag's indent
	out := append(append(append([]byte{}, b[:j]...), strings.Join(sets, "")...), b[j:]...)
	return writeFileAtomic(path, out)
}
