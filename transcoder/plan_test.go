package transcoder

import (
	"fmt"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	src := func(w, h int) *Probe {
		return &Probe{Video: &VideoStream{Width: w, Height: h, FrameRate: 25, Duration: 10}}
	}
	cases := []struct {
		name    string
		w, h    int
		opts    Options
		want    string // "name WxH bitrate" joined by "; "
		wantErr string
	}{
		{"1080p landscape", 1920, 1080, Options{},
			"1080p 1920x1080 5000000; 720p 1280x720 3000000; 480p 854x480 1500000; 360p 640x360 800000; 240p 426x240 400000; 144p 256x144 200000", ""},
		{"360p landscape", 640, 360, Options{}, "360p 640x360 800000; 240p 426x240 400000; 144p 256x144 200000", ""},
		{"720x1280 portrait", 720, 1280, Options{},
			"720p 720x1280 3000000; 480p 480x854 1500000; 360p 360x640 800000; 240p 240x426 400000; 144p 144x256 200000", ""},
		{"4k", 3840, 2160, Options{}, "2160p 3840x2160 14000000; 1440p 2560x1440 8000000; 1080p 1920x1080 5000000; 720p 1280x720 3000000; 480p 854x480 1500000; 360p 640x360 800000; 240p 426x240 400000; 144p 256x144 200000", ""},
		{"between rungs", 1000, 500, Options{}, "480p 960x480 1500000; 360p 720x360 800000; 240p 480x240 400000; 144p 288x144 200000", ""},
		{"smaller than 144", 160, 90, Options{}, "90p 160x90 200000", ""},
		{"odd tiny", 99, 75, Options{}, "74p 98x74 200000", ""},
		{"override with bitrate, sorted, deduped", 1920, 1080, Options{Renditions: []string{"480p", "720p@2500k", "1080p@6M", "480p@9M"}},
			"1080p 1920x1080 6000000; 720p 1280x720 2500000; 480p 854x480 1500000", ""},
		{"override upscale", 1280, 720, Options{Renditions: []string{"1080p"}}, "", "upscale"},
		{"override portrait upscale", 720, 1280, Options{Renditions: []string{"1080p"}}, "", "upscale"},
		{"bad codec", 1280, 720, Options{Codec: "vp8"}, "", "unknown codec"},
		{"hevc ladder is 60%", 640, 360, Options{Codec: "hevc"}, "360p 640x360 480000; 240p 426x240 240000; 144p 256x144 120000", ""},
		{"av1 ladder is 50%", 640, 360, Options{Codec: "av1"}, "360p 640x360 400000; 240p 426x240 200000; 144p 256x144 100000", ""},
		{"av1 named rungs", 1280, 720, Options{Codec: "av1", Renditions: []string{"720p", "360p@300k"}}, "720p 1280x720 1500000; 360p 640x360 300000", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Plan(src(tc.w, tc.h), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, r := range rs {
				if r.Width%2 != 0 || r.Height%2 != 0 {
					t.Errorf("%s: odd size %dx%d", r.Name, r.Width, r.Height)
				}
				if r.Width > tc.w || r.Height > tc.h {
					t.Errorf("%s: %dx%d upscales %dx%d", r.Name, r.Width, r.Height, tc.w, tc.h)
				}
				if want, _ := normalizeCodec(tc.opts.Codec); r.Codec != want {
					t.Errorf("%s: codec %q", r.Name, r.Codec)
				}
				parts = append(parts, fmt.Sprintf("%s %dx%d %d", r.Name, r.Width, r.Height, r.Bitrate))
			}
			if got := strings.Join(parts, "; "); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestChooseCuts(t *testing.T) {
	every := func(step, end float64) []float64 {
		var k []float64
		for x := 0.0; x < end; x += step {
			k = append(k, x)
		}
		return k
	}
	cases := []struct {
		name   string
		kf     []float64
		total  float64
		target float64
		want   string
	}{
		{"exact multiple", every(1, 12), 12, 4, "[4 8]"},
		{"tail merged", every(1, 13), 13, 4, "[4 8]"},
		{"tail kept", every(1, 15), 15, 4, "[4 8 12]"},
		{"short source", every(1, 5), 5, 6, "[]"},
		{"sparse", []float64{0, 20}, 30, 6, "[20]"},
		{"irregular", []float64{0, 2.5, 5.9, 7, 12.2, 13}, 20, 6, "[5.9 12.2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(chooseCuts(tc.kf, 0, tc.total, tc.target)); got != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
	if cutsWithin([]float64{20}, 0, 30, MaxChunkSeconds) {
		t.Error("a 20 s chunk passed the MaxChunkSeconds check")
	}
}

// TestPlanCapsAtTheSourceRate: no rung spends more bits than the source
// has, counted in the output codec's terms, and a rung the cap brings to
// the rate of the one above is dropped.
func TestPlanCapsAtTheSourceRate(t *testing.T) {
	hd := func(codec string, rate int64) *Probe {
		return &Probe{Duration: 10, Video: &VideoStream{Codec: codec, Width: 1920, Height: 1080, BitRate: rate}}
	}
	type rung struct {
		name string
		rate int64
	}
	cases := []struct {
		name string
		p    *Probe
		o    Options
		want []rung
	}{
		{"rich source: the default ladder", hd("h264", 20_000_000), Options{},
			[]rung{{"1080p", 5_000_000}, {"720p", 3_000_000}, {"480p", 1_500_000}, {"360p", 800_000}, {"240p", 400_000}, {"144p", 200_000}}},
		{"1.2 Mb/s 1080p: capped, repeats dropped", hd("h264", 1_200_000), Options{},
			[]rung{{"1080p", 1_200_000}, {"360p", 800_000}, {"240p", 400_000}, {"144p", 200_000}}},
		{"hevc source counts for more h264 bits", hd("hevc", 1_200_000), Options{},
			[]rung{{"1080p", 2_000_000}, {"480p", 1_500_000}, {"360p", 800_000}, {"240p", 400_000}, {"144p", 200_000}}},
		{"hevc output of an h264 source", hd("h264", 1_000_000), Options{Codec: "hevc"},
			[]rung{{"1080p", 600_000}, {"360p", 480_000}, {"240p", 240_000}, {"144p", 120_000}}},
		{"a still picture: one rung at the floor", hd("h264", 30_000), Options{},
			[]rung{{"1080p", 100_000}}},
		{"named rungs are capped, none dropped", hd("h264", 1_200_000), Options{Renditions: []string{"1080p", "720p", "144p"}},
			[]rung{{"1080p", 1_200_000}, {"720p", 1_200_000}, {"144p", 200_000}}},
		{"a named rate is kept as asked", hd("h264", 1_200_000), Options{Renditions: []string{"720p@3M"}},
			[]rung{{"720p", 3_000_000}}},
		{"no stream rate: the container's less the audio", &Probe{Duration: 10, BitRate: 1_328_000,
			Video: &VideoStream{Codec: "vp9", Width: 1280, Height: 720}, Audio: &AudioStream{Codec: "opus"}},
			Options{}, []rung{{"720p", 1_846_000}, {"480p", 1_500_000}, {"360p", 800_000}, {"240p", 400_000}, {"144p", 200_000}}},
		{"nothing known: no cap", &Probe{Video: &VideoStream{Codec: "h264", Width: 640, Height: 360}}, Options{},
			[]rung{{"360p", 800_000}, {"240p", 400_000}, {"144p", 200_000}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := Plan(c.p, c.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []rung
			for _, r := range rs {
				got = append(got, rung{r.Name, r.Bitrate})
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v\nwant %v", got, c.want)
			}
		})
	}
}
