package transcoder

import (
	"strings"
	"testing"
)

func TestRingBufferKeepsTail(t *testing.T) {
	r := &ringBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ij", "0123456789xyz"} {
		_, _ = r.Write([]byte(s))
	}
	if got := r.String(); got != "6789xyz" && got != "56789xyz" {
		t.Fatalf("tail = %q", got)
	}
	r2 := &ringBuffer{max: 8}
	_, _ = r2.Write([]byte("abcdef"))
	_, _ = r2.Write([]byte("ghij"))
	if got := r2.String(); got != "cdefghij" {
		t.Fatalf("tail = %q", got)
	}
}

func TestProgressWriter(t *testing.T) {
	var got []float64
	w := newProgressWriter(10, func(f float64) { got = append(got, f) })
	input := "frame=1\nout_time_us=2500000\nprogress=continue\nout_time_ms=5000000\nout_ti" +
		"me_us=-100\nout_time_us=N/A\nout_time_us=99000000\nprogress=end\n"
	// Split the writes at awkward places, as a pipe would.
	for _, part := range strings.SplitAfter(input, "_") {
		_, _ = w.Write([]byte(part))
	}
	want := []float64{0.25, 0.5, 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
