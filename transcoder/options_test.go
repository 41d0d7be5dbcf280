package transcoder

import (
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    Options
		wantErr string
	}{
		{"empty", "", Options{}, ""},
		{"whitespace", "  \n", Options{}, ""},
		{"empty object", "{}", Options{}, ""},
		{"full", `{"codec":"h264","renditions":["720p","480p@1200k","360p@1M"],"chunk_seconds":4}`,
			Options{Codec: "h264", Renditions: []string{"720p", "480p@1200k", "360p@1M"}, ChunkSeconds: 4}, ""},
		{"unknown field", `{"rendition":["720p"]}`, Options{}, "unknown field"},
		{"hevc", `{"codec":"hevc"}`, Options{Codec: "hevc"}, ""},
		{"h265 is hevc", `{"codec":"H265"}`, Options{Codec: "hevc"}, ""},
		{"av1", `{"codec":"av1"}`, Options{Codec: "av1"}, ""},
		{"av1 preset", `{"codec":"av1","preset":"slow"}`, Options{Codec: "av1", Preset: "slow"}, ""},
		{"bad codec", `{"codec":"mpeg2"}`, Options{}, "unknown codec"},
		{"bad rendition", `{"renditions":["hd"]}`, Options{}, "want a name like 720p"},
		{"odd height", `{"renditions":["721p@1M"]}`, Options{}, "even"},
		{"off-ladder needs bitrate", `{"renditions":["600p"]}`, Options{}, "give a bitrate"},
		{"off-ladder with bitrate", `{"renditions":["600p@2M"]}`, Options{Renditions: []string{"600p@2M"}}, ""},
		{"bad bitrate", `{"renditions":["720p@fast"]}`, Options{}, "bad bitrate"},
		{"tiny bitrate", `{"renditions":["720p@1k"]}`, Options{}, "outside"},
		{"chunk too short", `{"chunk_seconds":1}`, Options{}, "chunk_seconds"},
		{"chunk too long", `{"chunk_seconds":61}`, Options{}, "chunk_seconds"},
		{"preset", `{"preset":"slow"}`, Options{Preset: "slow"}, ""},
		{"bad preset", `{"preset":"-y /etc/x"}`, Options{}, "unknown x264 preset"},
		{"capped crf", `{"rate_control":"capped_crf"}`, Options{RateControl: RateCappedCRF}, ""},
		{"abr", `{"rate_control":"abr"}`, Options{RateControl: RateABR}, ""},
		{"bad rate control", `{"rate_control":"cbr"}`, Options{}, "unknown rate_control"},
		{"no capped crf for av1", `{"codec":"av1","rate_control":"capped_crf"}`, Options{}, "h264 and hevc"},
		{"dynamic range sdr", `{"dynamic_range":"sdr"}`, Options{DynamicRange: DynamicSDR}, ""},
		{"dynamic range both", `{"codec":"hevc","dynamic_range":"both"}`, Options{Codec: "hevc", DynamicRange: DynamicBoth}, ""},
		{"dynamic range auto", `{"dynamic_range":"auto"}`, Options{DynamicRange: DynamicAuto}, ""},
		{"bad dynamic range", `{"dynamic_range":"hdr10"}`, Options{}, "unknown dynamic_range"},
		{"trailing", `{} {}`, Options{}, "trailing"},
		{"not json", `720p`, Options{}, "options"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOptions([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.Codec != tc.want.Codec || got.Preset != tc.want.Preset || got.ChunkSeconds != tc.want.ChunkSeconds || got.DynamicRange != tc.want.DynamicRange || strings.Join(got.Renditions, ",") != strings.Join(tc.want.Renditions, ",") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
