package transcoder

import "testing"

func TestCheckComplete(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		size    int64
		dur     float64
		start   float64
		end     float64
		wantErr bool
	}{
		{"whole mp4", "mov,mp4,m4a,3gp,3g2,mj2", 1000, 10, 0, 9.96, false},
		{"frames stop early", "matroska,webm", 1000, 10, 0, 4, true},
		{"small gap within tolerance", "matroska,webm", 1000, 10, 0, 9.2, false},
		{"long file, 5% tolerance", "matroska,webm", 1000, 100, 0, 96, false},
		{"ts on a packet boundary", "mpegts", 188 * 100, 4, 0, 3.96, false},
		{"ts cut mid-packet", "mpegts", 188*100 + 37, 4, 0, 3.96, true},
		{"m2ts packets", "mpegts", 192 * 77, 4, 1.4, 5.36, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Probe{Format: tc.format, Size: tc.size, Video: &VideoStream{Duration: tc.dur, FrameRate: 25}}
			err := checkComplete(p, keyframeIndex{videoStart: tc.start, videoEnd: tc.end})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !IsMediaError(err) {
				t.Fatalf("not a MediaError: %v", err)
			}
		})
	}
}
