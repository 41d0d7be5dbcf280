package transcoder

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gosty/gosty/transcoder/confine"
)

// PackageInput is everything Package needs: the encoded chunks of every
// rendition (in chunk order) and the job's audio (EncodeAudio's .m4a, one
// or more tracks).
type PackageInput struct {
	Renditions     []Rendition
	Chunks         [][]string // [rendition][chunk] encoded chunk paths, in chunk order
	Audio          string     // "" = no audio
	SegmentSeconds float64    // 0 = DefaultSegmentSeconds
	// Duration is the video's length in seconds; it sizes the deadlines of
	// the ffmpeg runs (0 = assume the longest accepted source).
	Duration float64
	// Subtitles are published after the rest (subpackage.go).
	Subtitles []SubtitleInput
}

// PackageResult lists what Package wrote. Paths are relative to outDir and
// slash-separated, ready to become URLs.
type PackageResult struct {
	Files []string
	HLS   string            // "master.m3u8"
	DASH  string            // "manifest.mpd"
	MP4   map[string]string // rendition name -> "mp4/720p.mp4"
	// Codecs is each rendition's RFC 6381 codecs value as written into
	// the manifests, read from its init segment.
	Codecs []string
}

const (
	hlsMaster    = "master.m3u8"
	dashManifest = "manifest.mpd"
)

var safeName = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_.@-]*$`)

// Package stitches each rendition's chunks (stream copy) and writes, in one
// ffmpeg run, DASH and HLS over the same fMP4 segments plus one progressive
// MP4 per rendition with every audio track muxed in. outDir should be
// empty: every file in it is reported in Files. Intermediates live in a
// sibling temp dir so a half-finished package never shows up among the
// outputs.
func (t *Transcoder) Package(ctx context.Context, in PackageInput, outDir string) (*PackageResult, error) {
	if err := checkPackageInput(in); err != nil {
		return nil, err
	}
	n := len(in.Renditions)
	seg := in.SegmentSeconds
	if seg <= 0 {
		seg = DefaultSegmentSeconds
	}
	if err := os.MkdirAll(filepath.Join(outDir, "mp4"), 0o755); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(outDir)), ".gosty-pkg-")
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	defer os.RemoveAll(tmp)

	media := in.Duration
	if media <= 0 {
		media = maxDuration
	}
	stitched := make([]string, n)
	for i, r := range in.Renditions {
		stitched[i] = filepath.Join(tmp, fmt.Sprintf("v%d.mp4", i))
		if err := t.stitch(ctx, media, in.Chunks[i], filepath.Join(tmp, fmt.Sprintf("v%d.ffconcat", i)), stitched[i]); err != nil {
			return nil, fmt.Errorf("package: stitch %s: %w", r.Name, err)
		}
	}
	var tracks []AudioTrack // packaudio.go
	if in.Audio != "" {
		if tracks, err = t.AudioTracksOf(ctx, in.Audio, media); err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
	}
	res := &PackageResult{HLS: hlsMaster, DASH: dashManifest, MP4: map[string]string{}}
	args := packageArgs(in, stitched, tracks, seg, outDir, res)
	// One run muxes every rendition twice (DASH and MP4) by stream copy.
	access := confine.Policy{Read: stitched, Write: []string{outDir}}
	if in.Audio != "" {
		access.Read = append(slices.Clip(access.Read), in.Audio)
	}
	if err := t.run(ctx, copyDeadline(media*float64(2*n+1)), t.ffmpeg, args, nil, access); err != nil {
		return nil, fmt.Errorf("package %s: %w", outDir, err)
	}
	if err := t.finishPackage(in, tracks, seg, outDir, res); err != nil {
		return nil, fmt.Errorf("package %s: %w", outDir, err)
	}
	t.log.Info("packaged", "dir", outDir, "renditions", n, "files", len(res.Files), "audio_tracks", len(tracks))
	return res, nil
}

// checkPackageInput refuses a package input that names no rendition, a
// rendition without chunks, or a rendition name unfit for a file name.
func checkPackageInput(in PackageInput) error {
	n := len(in.Renditions)
	if n == 0 || len(in.Chunks) != n {
		return fmt.Errorf("package: %d renditions but %d chunk lists", n, len(in.Chunks))
	}
	for i, r := range in.Renditions {
		if !safeName.MatchString(r.Name) {
			return fmt.Errorf("package: rendition name %q is not a safe file name", r.Name)
		}
		if len(in.Chunks[i]) == 0 {
			return fmt.Errorf("package: rendition %s has no chunks", r.Name)
		}
	}
	return nil
}

// packageArgs is the one ffmpeg run's command line: the stitched
// renditions and the audio in, DASH and HLS over shared segments and one
// progressive MP4 per rendition out (named in res.MP4).
func packageArgs(in PackageInput, stitched []string, tracks []AudioTrack, seg float64, outDir string, res *PackageResult) []string {
	n := len(in.Renditions)
	hasAudio := in.Audio != ""
	args := ffmpegBase()
	for _, s := range stitched {
		args = append(args, "-protocol_whitelist", "file", "-i", inputURL(s))
	}
	if hasAudio {
		args = append(args, "-protocol_whitelist", "file", "-i", inputURL(in.Audio))
	}
	for i := range n {
		args = append(args, "-map", fmt.Sprintf("%d:v:0", i))
	}
	// ffmpeg 5.1's DASH muxer refuses an adaptation set whose
	// representations' picture aspect ratios differ even by rounding (426x240
	// next to 640x360), and even sizes make such rounding unavoidable. The
	// stream-level aspect of each representation is therefore set to the top
	// rendition's (a sub-percent pixel aspect change, only in the segments);
	// the progressive MP4s keep square pixels.
	dar := fmt.Sprintf("%d:%d", in.Renditions[0].Width, in.Renditions[0].Height)
	for i := range n {
		args = append(args, fmt.Sprintf("-aspect:%d", i), dar)
	}
	sets, nsets := videoAdaptationSets(in.Renditions)
	if hasAudio {
		a, more := audioPackageArgs(n, n, nsets, tracks) // after the video sets
		args, sets = append(args, a...), sets+more
	}
	args = append(args, "-c", "copy", "-f", "dash",
		"-seg_duration", fmtSec(seg), "-use_template", "1", "-use_timeline", "1",
		"-hls_playlist", "1", "-hls_master_name", hlsMaster,
		"-adaptation_sets", sets,
		"-init_seg_name", "init-$RepresentationID$.m4s",
		"-media_seg_name", "seg-$RepresentationID$-$Number%05d$.m4s",
		"-y", filepath.Join(outDir, dashManifest))
	for i, r := range in.Renditions {
		rel := "mp4/" + r.Name + ".mp4"
		res.MP4[r.Name] = rel
		args = append(args, "-map", fmt.Sprintf("%d:v:0", i))
		if hasAudio { // every track, the first one default (as in the .m4a)
			args = append(args, "-map", fmt.Sprintf("%d:a", n))
		}
		args = append(args, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y", filepath.Join(outDir, filepath.FromSlash(rel)))
	}
	return args
}

// finishPackage fixes up what ffmpeg wrote (codec strings, the HLS
// playlists, byte ranges), adds the subtitles last (they add to the
// master and the MPD as written) and lists every file in res.Files.
func (t *Transcoder) finishPackage(in PackageInput, tracks []AudioTrack, seg float64, outDir string, res *PackageResult) error {
	codecs, err := fixCodecs(outDir, len(in.Renditions))
	if err != nil {
		return err
	}
	res.Codecs = codecs
	if err := t.fixHLS(outDir, in.Renditions, tracks); err != nil {
		return err
	}
	if err := fixRanges(outDir, in.Renditions); err != nil {
		return err
	}
	if err := packageSubtitles(outDir, in.Subtitles, seg, in.Duration); err != nil {
		return err
	}
	err = filepath.WalkDir(outDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(outDir, p)
		if err != nil {
			return err
		}
		res.Files = append(res.Files, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(res.Files)
	return err
}

// stitch joins one rendition's chunks with the concat demuxer. The list is
// ours and names only our own files, hence -safe 0.
func (t *Transcoder) stitch(ctx context.Context, media float64, chunks []string, list, out string) error {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for _, c := range chunks {
		abs, err := filepath.Abs(c)
		if err != nil {
			return err
		}
		b.WriteString("file '" + strings.ReplaceAll(abs, "'", `'\''`) + "'\n")
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return err
	}
	args := ffmpegBase()
	args = append(args, "-f", "concat", "-safe", "0", "-protocol_whitelist", "file,pipe",
		"-i", list, "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y", out)
	// The list and the chunks it names are read; only the stitched file,
	// in the package's scratch directory, is written.
	access := confine.Policy{Read: append([]string{list}, chunks...), Write: []string{filepath.Dir(out)}}
	return t.run(ctx, copyDeadline(media), t.ffmpeg, args, nil, access)
}

// mpdRep is the part of an MPD Representation needed to write HLS.
type mpdRep struct {
	ID        string `xml:"id,attr"`
	Codecs    string `xml:"codecs,attr"`
	Bandwidth int64  `xml:"bandwidth,attr"`
	Width     int    `xml:"width,attr"`
	Height    int    `xml:"height,attr"`
	MimeType  string `xml:"mimeType,attr"`
}

type mpdDoc struct {
	Periods []struct {
		Sets []struct {
			ContentType string   `xml:"contentType,attr"`
			FrameRate   string   `xml:"frameRate,attr"`
			Reps        []mpdRep `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

var streamInfRe = regexp.MustCompile(`^#EXT-X-STREAM-INF:(.*)$`)

// codecsRe is an RFC 6381 codecs list as HLS's CODECS attribute takes it:
// nothing that could end the quoted attribute or the line.
var codecsRe = regexp.MustCompile(`^[A-Za-z0-9.+-]+(,[A-Za-z0-9.+-]+)*$`)

// fixHLS writes the master playlist from the MPD and the audio tracks
// (ffmpeg's own master names neither languages nor channels) and makes
// the media playlists plain VOD: the muxer stamps wall-clock
// PROGRAM-DATE-TIME tags that mean nothing for an on-demand asset.
func (t *Transcoder) fixHLS(outDir string, rs []Rendition, tracks []AudioTrack) error {
	masterPath := filepath.Join(outDir, hlsMaster)
	mpd, err := os.ReadFile(filepath.Join(outDir, dashManifest))
	if err != nil {
		return fmt.Errorf("read mpd: %w", err)
	}
	m, err := buildMaster(mpd, rs, tracks)
	if err != nil {
		return err
	}
	if !masterComplete(m, len(rs)) {
		return fmt.Errorf("hls master: built without every variant's BANDWIDTH, RESOLUTION and CODECS")
	}
	if err := writeFileAtomic(masterPath, m); err != nil {
		return err
	}
	media, _ := filepath.Glob(filepath.Join(outDir, "media_*.m3u8"))
	for _, p := range media {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(p, vodMediaPlaylist(b)); err != nil {
			return err
		}
	}
	return nil
}

// vodMediaPlaylist rewrites a media playlist as plain VOD: no
// PROGRAM-DATE-TIME tags, and PLAYLIST-TYPE:VOD right after the version.
// Line endings become "\n"; every other line is kept as it is, however long
// (the bufio.Scanner this replaces silently stopped at a 64 KiB line).
func vodMediaPlaylist(b []byte) []byte {
	var out bytes.Buffer
	lines := strings.Split(string(b), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the final newline ends a line, it does not start one
	}
	for _, l := range lines {
		// A CR before the LF is part of the terminator; more than one
		// could only be read back as a different line, so all go.
		l = strings.TrimRight(l, "\r")
		if strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME") || strings.HasPrefix(l, "#EXT-X-PLAYLIST-TYPE") {
			continue
		}
		out.WriteString(l + "\n")
		if strings.HasPrefix(l, "#EXT-X-VERSION") {
			out.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
		}
	}
	return out.Bytes()
}

func masterComplete(master []byte, want int) bool {
	got := 0
	for _, l := range strings.Split(string(master), "\n") {
		m := streamInfRe.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if !strings.Contains(m[1], "BANDWIDTH=") || !strings.Contains(m[1], "RESOLUTION=") || !strings.Contains(m[1], "CODECS=") {
			return false
		}
		got++
	}
	return got == want
}

// buildMaster writes an HLS master playlist from the MPD ffmpeg produced:
// video representation i is media_i.m3u8, the audio tracks follow them.
func buildMaster(mpd []byte, rs []Rendition, tracks []AudioTrack) ([]byte, error) {
	var doc mpdDoc
	if err := xml.Unmarshal(mpd, &doc); err != nil {
		return nil, fmt.Errorf("parse mpd: %w", err)
	}
	video := map[string]mpdRep{}
	var audio []mpdRep
	frameRate := ""
	for _, p := range doc.Periods {
		for _, s := range p.Sets {
			isVideo := s.ContentType == "video"
			if isVideo && s.FrameRate != "" {
				frameRate = s.FrameRate
			}
			for _, r := range s.Reps {
				switch {
				case isVideo || strings.HasPrefix(r.MimeType, "video/"):
					video[r.ID] = r
				case s.ContentType == "audio" || strings.HasPrefix(r.MimeType, "audio/"):
					audio = append(audio, r)
				}
			}
		}
	}
	vs := make([]Variant, len(rs))
	for i, r := range rs {
		rep, ok := video[strconv.Itoa(i)]
		if !ok || !codecsRe.MatchString(rep.Codecs) {
			return nil, fmt.Errorf("mpd has no video representation %d with usable codecs for %s", i, r.Name)
		}
		// Peak bandwidth: the encoder's VBV ceiling, or what was measured
		// if that is higher.
		vs[i] = Variant{Rendition: r, Codecs: rep.Codecs, Bandwidth: max(int64(float64(r.Bitrate)*1.07), rep.Bandwidth),
			FrameRate: parseRate(frameRate), URI: fmt.Sprintf("media_%d.m3u8", i), VideoRange: HLSVideoRange(r.Range)}
		if rep.Width > 0 && rep.Height > 0 {
			vs[i].Rendition.Width, vs[i].Rendition.Height = rep.Width, rep.Height
		}
	}
	return MasterPlaylist(Master{Variants: vs, Audio: audioVariants(audio, len(rs), tracks)}), nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := fsyncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

var (
	mpdRepRe    = regexp.MustCompile(`<Representation\s[^>]*>`)
	mpdRepIDRe  = regexp.MustCompile(`\sid="([0-9]+)"`)
	mpdCodecsRe = regexp.MustCompile(`\scodecs="[^"]*"`)
)

// fixCodecs reads each video representation's codecs value from its init
// segment (init-<i>.m4s) and writes it into the MPD. ffmpeg 5.1's DASH
// muxer writes a bare "hvc1" for HEVC (no profile, tier or level), which
// players that check CODECS refuse; deriving every codec's value from the
// stream itself keeps the manifests true to what the encoder made.
func fixCodecs(outDir string, n int) ([]string, error) {
	codecs := make([]string, n)
	for i := range n {
		c, err := CodecString(filepath.Join(outDir, fmt.Sprintf("init-%d.m4s", i)))
		if err != nil {
			return nil, fmt.Errorf("codecs of representation %d: %w", i, err)
		}
		if !codecsRe.MatchString(c) {
			return nil, fmt.Errorf("codecs of representation %d: bad value %q", i, c)
		}
		codecs[i] = c
	}
	p := filepath.Join(outDir, dashManifest)
	mpd, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read mpd: %w", err)
	}
	fixed := mpdRepRe.ReplaceAllFunc(mpd, func(tag []byte) []byte {
		m := mpdRepIDRe.FindSubmatch(tag)
		if m == nil {
			return tag
		}
		i, err := strconv.Atoi(string(m[1]))
		if err != nil || i >= n || !bytes.Contains(tag, []byte(`mimeType="video/`)) {
			return tag
		}
		attr := []byte(` codecs="` + codecs[i] + `"`)
		if mpdCodecsRe.Match(tag) {
			return mpdCodecsRe.ReplaceAll(tag, attr)
		}
		return bytes.Replace(tag, []byte("<Representation"), append([]byte("<Representation"), attr...), 1)
	})
	if !bytes.Equal(fixed, mpd) {
		if err := writeFileAtomic(p, fixed); err != nil {
			return nil, err
		}
	}
	return codecs, nil
}
