package transcoder

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hdr10Meta is what hdrSources' HDR10 clip carries, as the probe states it.
var hdr10Meta = HDR10{MasteringDisplay: "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)", MaxCLL: 1000, MaxFALL: 400}

// outFacts is what a player learns of an encoded rendition: its stream's
// format and colour tags, and the HDR10 side data of its first frame.
type outFacts struct {
	PixFmt, Transfer, Primaries, Space string
	Mastering, ContentLight            bool
}

func probeOut(t *testing.T, path string) outFacts {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
		"-show_entries", "stream=pix_fmt,color_transfer,color_primaries,color_space:frame=side_data_list", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var o struct {
		Streams []struct {
			PixFmt    string `json:"pix_fmt"`
			Transfer  string `json:"color_transfer"`
			Primaries string `json:"color_primaries"`
			Space     string `json:"color_space"`
		} `json:"streams"`
		Frames []struct {
			SideData []struct {
				Type string `json:"side_data_type"`
			} `json:"side_data_list"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(b, &o); err != nil || len(o.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v %s", path, err, b)
	}
	s := o.Streams[0]
	f := outFacts{PixFmt: s.PixFmt, Transfer: s.Transfer, Primaries: s.Primaries, Space: s.Space}
	for _, fr := range o.Frames {
		for _, d := range fr.SideData {
			f.Mastering = f.Mastering || d.Type == "Mastering display metadata"
			f.ContentLight = f.ContentLight || d.Type == "Content light level metadata"
		}
	}
	return f
}

// TestHDRKept: an HDR10 source's metadata is probed; hevc and av1 rungs
// keep HDR (10-bit, BT.2020, PQ, the HDR10 SEI/OBUs), h264 rungs and
// "sdr" hevc rungs are tone-mapped 8-bit BT.709, all in one encode; "both"
// packages an SDR h264 and an HDR hevc ladder into one master (VIDEO-RANGE
// SDR and PQ) and one MPD (separate AdaptationSets, CICP 9/16/9 on the HDR
// one), and the quality report scores each rung like with like. An HLG
// source keeps HLG in hevc (VIDEO-RANGE=HLG, CICP 18).
func TestHDRKept(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel) // after the parallel subtests
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	named := Options{Renditions: []string{"180p@300k"}}
	with := func(o Options, f func(*Options)) Options { f(&o); return o }

	t.Run("hdr10", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(dir, "pq")
		src := genHDRSized(t, mkdir(t, dir), "hdr10", "320x180", "smpte2084", hdrSources[0].x265)
		p, err := tr.Probe(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Video.HDR10(); got != hdr10Meta {
			t.Fatalf("probed HDR10 metadata %+v, want %+v", got, hdr10Meta)
		}
		both := plan(t, p, with(named, func(o *Options) { o.DynamicRange = DynamicBoth }))
		if len(both) != 2 || both[0].Name != "180p" || both[0].Codec != CodecH264 || both[0].Range != "" ||
			both[1].Name != "180p-hdr" || both[1].Codec != CodecHEVC || both[1].Range != RangePQ {
			t.Fatalf("both: %+v", both)
		}
		sdr := plan(t, p, with(named, func(o *Options) { o.Codec, o.DynamicRange = CodecHEVC, DynamicSDR }))
		av1 := plan(t, p, with(named, func(o *Options) { o.Codec = CodecAV1 }))
		sdr[0].Name, av1[0].Name = "180p-sdr-hevc", "180p-av1"
		rs := append(append(append([]Rendition{}, both...), sdr...), av1...)
		outs := encodeAll(ctx, t, tr, p, src, rs, dir)
		want := []outFacts{
			{"yuv420p", "bt709", "bt709", "bt709", false, false},
			{"yuv420p10le", "smpte2084", "bt2020", "bt2020nc", true, true},
			{"yuv420p", "bt709", "bt709", "bt709", false, false},
			{"yuv420p10le", "smpte2084", "bt2020", "bt2020nc", true, true},
		}
		for i, o := range outs {
			if got := probeOut(t, o); got != want[i] {
				t.Errorf("%s (%s %q): %+v, want %+v", rs[i].Name, rs[i].Codec, rs[i].Range, got, want[i])
			}
		}
		res, pkg := packageAll(ctx, t, tr, both, outs[:2], dir)
		master := readText(t, filepath.Join(pkg, res.HLS))
		for _, w := range []string{",VIDEO-RANGE=SDR", ",VIDEO-RANGE=PQ"} {
			if strings.Count(master, w) != 1 {
				t.Errorf("master has %d %q:\n%s", strings.Count(master, w), w, master)
			}
		}
		mpd := readText(t, filepath.Join(pkg, res.DASH))
		for _, w := range []string{`cicp:ColourPrimaries" value="9"`, `cicp:TransferCharacteristics" value="16"`,
			`cicp:MatrixCoefficients" value="9"`, `cicp:TransferCharacteristics" value="1"`} {
			if !strings.Contains(mpd, w) {
				t.Errorf("mpd lacks %s:\n%s", w, mpd)
			}
		}
		if n := strings.Count(mpd, `contentType="video"`); n != 2 {
			t.Errorf("mpd has %d video AdaptationSets, want 2 (SDR and HDR apart):\n%s", n, mpd)
		}
		if got := probeOut(t, filepath.Join(pkg, res.MP4["180p-hdr"])); got != want[1] {
			t.Errorf("packaged HDR mp4: %+v", got)
		}
		// Like with like: the SDR rung against the tone-mapped source, the
		// HDR rung against the untouched one; crossed, both score lower.
		mp4s := []string{filepath.Join(pkg, res.MP4["180p"]), filepath.Join(pkg, res.MP4["180p-hdr"])}
		like := quality(ctx, t, tr, p, src, both, mp4s, filepath.Join(dir, "q1"))
		crossed := []Rendition{both[0], both[1]}
		crossed[0].Range, crossed[0].Codec = RangePQ, CodecHEVC
		crossed[1].Range = ""
		unlike := quality(ctx, t, tr, p, src, crossed, mp4s, filepath.Join(dir, "q2"))
		for i := range both {
			t.Logf("%s: SSIM %.4f like with like, %.4f crossed", both[i].Name, like[i].SSIM, unlike[i].SSIM)
			if like[i].SSIM < 0.95 || like[i].SSIM <= unlike[i].SSIM {
				t.Errorf("%s: SSIM %.4f like with like, %.4f crossed", both[i].Name, like[i].SSIM, unlike[i].SSIM)
			}
		}
	})

	t.Run("hlg", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(dir, "hlg")
		src := genHDRSized(t, mkdir(t, dir), "hlg", "320x180", "arib-std-b67", hdrSources[1].x265)
		p, err := tr.Probe(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		rs := plan(t, p, with(named, func(o *Options) { o.Codec = CodecHEVC }))
		if len(rs) != 1 || rs[0].Range != RangeHLG {
			t.Fatalf("hevc ladder of an HLG source: %+v", rs)
		}
		outs := encodeAll(ctx, t, tr, p, src, rs, dir)
		if got, want := probeOut(t, outs[0]), (outFacts{"yuv420p10le", "arib-std-b67", "bt2020", "bt2020nc", false, false}); got != want {
			t.Errorf("%s: %+v, want %+v", rs[0].Name, got, want)
		}
		res, pkg := packageAll(ctx, t, tr, rs, outs, dir)
		if m := readText(t, filepath.Join(pkg, res.HLS)); !strings.Contains(m, ",VIDEO-RANGE=HLG") {
			t.Errorf("master lacks VIDEO-RANGE=HLG:\n%s", m)
		}
		if m := readText(t, filepath.Join(pkg, res.DASH)); !strings.Contains(m, `cicp:TransferCharacteristics" value="18"`) {
			t.Errorf("mpd lacks HLG's CICP:\n%s", m)
		}
	})

	t.Run("sdr-10bit", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(dir, "sdr")
		mustGen(t, mkdir(t, dir), "sdr10.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "2",
			"-vf", "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error")
		src := filepath.Join(dir, "sdr10.mp4")
		p, err := tr.Probe(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		rs := plan(t, p, with(named, func(o *Options) { o.DynamicRange = DynamicBoth }))
		if len(rs) != 1 || rs[0].Range != "" || rs[0].Codec != CodecH264 {
			t.Fatalf("\"both\" on an SDR source: %+v, want the plain ladder", rs)
		}
		outs := encodeAll(ctx, t, tr, p, src, rs, dir)
		res, pkg := packageAll(ctx, t, tr, rs, outs, dir)
		if got := probeOut(t, outs[0]); got.PixFmt != "yuv420p" {
			t.Errorf("10-bit SDR source made %s for h264, want yuv420p", got.PixFmt)
		}
		if m := readText(t, filepath.Join(pkg, res.HLS)); !strings.Contains(m, ",VIDEO-RANGE=SDR") {
			t.Errorf("master lacks VIDEO-RANGE=SDR:\n%s", m)
		}
	})
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func plan(t *testing.T, p *Probe, o Options) []Rendition {
	t.Helper()
	rs, err := Plan(p, o)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// encodeAll encodes the source's first chunk to rs, the way the worker
// does (ToneMap from the source, its HDR10 metadata).
func encodeAll(ctx context.Context, t *testing.T, tr *Transcoder, p *Probe, src string, rs []Rendition, dir string) []string {
	t.Helper()
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	s := EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, ToneMap: p.Video.DynamicRange(), HDR10: p.Video.HDR10(), Preset: "ultrafast"}
	outs, err := tr.EncodeChunk(ctx, chunks[0], s, filepath.Join(dir, "enc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func packageAll(ctx context.Context, t *testing.T, tr *Transcoder, rs []Rendition, outs []string, dir string) (*PackageResult, string) {
	t.Helper()
	chunks := make([][]string, len(outs))
	for i, o := range outs {
		chunks[i] = []string{o}
	}
	pkg := filepath.Join(dir, "pkg")
	res, err := tr.Package(ctx, PackageInput{Renditions: rs, Chunks: chunks}, pkg)
	if err != nil {
		t.Fatal(err)
	}
	return res, pkg
}

func quality(ctx context.Context, t *testing.T, tr *Transcoder, p *Probe, src string, rs []Rendition, mp4s []string, dir string) []Quality {
	t.Helper()
	chunks := []Chunk{{Index: 0, Duration: p.Video.Duration, Path: src}}
	windows := QualitySample(chunks, p.Video.FrameRate)
	for i := range windows {
		windows[i].Source = src
	}
	qs, err := tr.MeasureQuality(ctx, windows, Reference{ToneMap: p.Video.DynamicRange()}, p.Video.FrameRate, rs, mp4s, dir)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// TestPlanDynamicRange: which rungs keep an HDR source's range, per codec
// and option, and a "both" default ladder's shape and size.
func TestPlanDynamicRange(t *testing.T) {
	pq := &Probe{Duration: 10, Video: &VideoStream{Codec: "hevc", Width: 3840, Height: 2160, FrameRate: 25, ColorTransfer: "smpte2084"}}
	ranges := func(rs []Rendition) string {
		var b strings.Builder
		for _, r := range rs {
			b.WriteString(r.Name + ":" + r.Codec + ":" + r.Range + " ")
		}
		return strings.TrimSpace(b.String())
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Renditions: []string{"720p"}}, "720p:h264:"},
		{Options{Renditions: []string{"720p"}, Codec: "hevc"}, "720p:hevc:pq"},
		{Options{Renditions: []string{"720p"}, Codec: "av1", DynamicRange: "auto"}, "720p:av1:pq"},
		{Options{Renditions: []string{"720p"}, Codec: "hevc", DynamicRange: "sdr"}, "720p:hevc:"},
		{Options{Renditions: []string{"720p", "360p"}, DynamicRange: "both"}, "720p:h264: 360p:h264: 720p-hdr:hevc:pq 360p-hdr:hevc:pq"},
		{Options{Renditions: []string{"720p"}, Codec: "av1", DynamicRange: "both"}, "720p:h264: 720p-hdr:av1:pq"},
		// The default ladder of a 2160p source: HDR down to 360p, SDR cut
		// to fit 12 rungs.
		{Options{DynamicRange: "both"}, "2160p:h264: 1440p:h264: 1080p:h264: 720p:h264: 480p:h264: 360p:h264: " +
			"2160p-hdr:hevc:pq 1440p-hdr:hevc:pq 1080p-hdr:hevc:pq 720p-hdr:hevc:pq 480p-hdr:hevc:pq 360p-hdr:hevc:pq"},
	} {
		rs, err := Plan(pq, c.o)
		if err != nil {
			t.Fatalf("%+v: %v", c.o, err)
		}
		if got := ranges(rs); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.o, got, c.want)
		}
		for _, r := range rs {
			if !safeName.MatchString(r.Name) {
				t.Errorf("rendition name %q is not a safe file name", r.Name)
			}
		}
	}
	sdr := *pq
	v := *pq.Video
	v.ColorTransfer = "bt709"
	sdr.Video = &v
	if rs, _ := Plan(&sdr, Options{Codec: "hevc", Renditions: []string{"720p"}, DynamicRange: "both"}); ranges(rs) != "720p:hevc:" {
		t.Errorf("\"both\" on an SDR source: %s", ranges(rs))
	}
}

// TestHDR10SideData: ffprobe's mastering display and content light side
// data (any rational base) becomes the x265 syntax, SVT-AV1's is derived
// from it, and values out of range are dropped rather than passed to an
// encoder's parameter string.
func TestHDR10SideData(t *testing.T) {
	raw := func(s string) []json.RawMessage {
		var l []json.RawMessage
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	var v VideoStream
	applySideData(&v, raw(`[{"side_data_type":"Mastering display metadata","red_x":"44564/65536","red_y":"20972/65536",
		"green_x":"17367/65536","green_y":"45220/65536","blue_x":"9830/65536","blue_y":"3932/65536",
		"white_point_x":"20493/65536","white_point_y":"21561/65536","min_luminance":"2/16384","max_luminance":"256000/256"},
		{"side_data_type":"Content light level metadata","max_content":1000,"max_average":400},
		{"side_data_type":"Display Matrix","rotation":-90}]`))
	want := HDR10{MasteringDisplay: "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)", MaxCLL: 1000, MaxFALL: 400}
	if got := v.HDR10(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := svtMasteringDisplay(want.MasteringDisplay); got != "G(0.26500,0.69000)B(0.15000,0.06000)R(0.68000,0.32000)WP(0.31270,0.32900)L(1000.0000,0.0001)" {
		t.Errorf("SVT-AV1 mastering display %s", got)
	}
	var bad VideoStream
	applySideData(&bad, raw(`[{"side_data_type":"Mastering display metadata","red_x":"9e30/1","red_y":"1/2",
		"green_x":"1/2","green_y":"1/2","blue_x":"1/2","blue_y":"1/2","white_point_x":"1/2","white_point_y":"1/2",
		"min_luminance":"0/1","max_luminance":"1000/1"},
		{"side_data_type":"Content light level metadata","max_content":70000,"max_average":400}]`))
	if got := bad.HDR10(); got != (HDR10{}) {
		t.Errorf("out-of-range side data kept: %+v", got)
	}
	if masterDisplay("G(1,1)B(1,1)R(1,1)WP(1,1)L(10,1):hdr10=0") != nil {
		t.Error("a mastering display with a trailing parameter accepted")
	}
	if _, err := hdrEncoderArgs([]string{"-c:v", "libx264"}, Rendition{Name: "x", Codec: CodecH264, Range: RangePQ}, want); err == nil {
		t.Error("an HDR h264 rung accepted")
	}
}
