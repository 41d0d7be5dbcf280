package transcoder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// sniff rejects files that are obviously not media before any demuxer sees
// them (see sniffHead).
func sniff(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer f.Close()
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("probe: read %s: %w", path, err)
	}
	return sniffHead(head[:n])
}

// sniffBytes is how much of a file sniffHead looks at.
const sniffBytes = 4096

// magics are binary formats people upload by mistake; naming them gives a
// better reason than ffprobe's "Invalid data found". Images are left to the
// demuxer allowlist, which names their format.
var magics = []struct {
	prefix, what string
}{
	{"PK\x03\x04", "a zip archive"},
	{"PK\x05\x06", "a zip archive"},
	{"\x1f\x8b", "a gzip archive"},
	{"BZh", "a bzip2 archive"},
	{"\xfd7zXZ\x00", "an xz archive"},
	{"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"},
	{"Rar!\x1a\x07", "a RAR archive"},
	{"\x28\xb5\x2f\xfd", "a zstd archive"},
	{"%PDF-", "a PDF document"},
	{"\x7fELF", "a program"},
}

// sniffHead classifies the first bytes of an upload. It refuses empty
// files, text (playlists, concat lists, DASH manifests, SDP, subtitles: the
// inputs able to make ffmpeg open other files or addresses, and nothing
// else a video can be), archives, documents and programs. Binary media pass
// on to ffprobe and the demuxer allowlist, which is the real gate: sniffing
// only gives better reasons and a second line of defence.
func sniffHead(head []byte) error {
	if len(head) > sniffBytes {
		head = head[:sniffBytes]
	}
	if len(head) == 0 {
		return &MediaError{Reason: "file is empty"}
	}
	s := bytes.TrimLeft(head, "\ufeff \t\r\n")
	switch {
	case bytes.HasPrefix(s, []byte("#EXTM3U")):
		return &MediaError{Reason: "file is an HLS playlist, not a video"}
	case bytes.HasPrefix(s, []byte("ffconcat")):
		return &MediaError{Reason: "file is a concat list, not a video"}
	case bytes.HasPrefix(s, []byte("<?xml")), bytes.HasPrefix(s, []byte("<MPD")):
		return &MediaError{Reason: "file is an XML document (e.g. a DASH manifest), not a video"}
	case bytes.HasPrefix(s, []byte("v=0")):
		return &MediaError{Reason: "file is an SDP session description, not a video"}
	case bytes.HasPrefix(s, []byte("[Script Info]")), bytes.HasPrefix(s, []byte("WEBVTT")):
		return &MediaError{Reason: "file is a subtitle file, not a video"}
	case bytes.HasPrefix(head, []byte("YUV4MPEG2")):
		return nil // text header, raw frames after it
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m.prefix)) {
			return &MediaError{Reason: "file is " + m.what + ", not a video"}
		}
	}
	if len(head) > 262 && bytes.HasPrefix(head[257:], []byte("ustar")) {
		return &MediaError{Reason: "file is a tar archive, not a video"}
	}
	if mostlyText(head) {
		return &MediaError{Reason: "file is a playlist or text, not a video"}
	}
	return nil
}

func mostlyText(b []byte) bool {
	if len(b) == 0 || bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	if !utf8.Valid(b[:len(b)-min(len(b), 3)]) {
		return false
	}
	printable := 0
	for _, c := range b {
		if c >= 0x20 && c != 0x7f || c == '\n' || c == '\r' || c == '\t' || c >= 0x80 {
			printable++
		}
	}
	return float64(printable) >= 0.95*float64(len(b))
}
