package transcoder

import "testing"

func TestCodecStringFrom(t *testing.T) {
	cases := []struct {
		entry string
		cfg   []byte
		want  string
	}{
		{"avc1", []byte{1, 0x64, 0x00, 0x1f}, "avc1.64001f"},
		// HEVC Main, compatibility flags 0x60000000, level 3.1, constraint
		// byte 0xB0: the example of ISO/IEC 14496-15 annex E.
		{"hvc1", []byte{1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93}, "hvc1.1.6.L93.B0"},
		// Main 10, high tier, level 5.1, two constraint bytes.
		{"hev1", []byte{1, 0x22, 0x20, 0, 0, 0, 0x90, 0x08, 0, 0, 0, 0, 153}, "hev1.2.4.H153.90.8"},
		{"av01", []byte{0x81, 0x08, 0x0c}, "av01.0.08M.08"},
		{"av01", []byte{0x81, 0x2d, 0xc0}, "av01.1.13H.10"},
	}
	for _, tc := range cases {
		got, err := codecStringFrom(tc.entry, tc.cfg)
		if err != nil || got != tc.want {
			t.Errorf("%s %x: got %q, %v; want %q", tc.entry, tc.cfg, got, err, tc.want)
		}
	}
	if _, err := codecStringFrom("hvc1", []byte{1, 2}); err == nil {
		t.Error("short hvcC accepted")
	}
	if _, err := codecStringFrom("mp4v", []byte{1, 2, 3, 4}); err == nil {
		t.Error("unknown entry accepted")
	}
}
