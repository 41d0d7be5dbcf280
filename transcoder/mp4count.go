package transcoder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// mp4VideoFrames reads the sample count of the first video track of a
// progressive MP4 from its sample size box (moov/trak/mdia/minf/stbl/stsz).
// Verifying every encoded rendition with an ffprobe costs a process start
// per file, a visible share of a short chunk's CPU; reading a few boxes
// costs nothing. Only our own encoder output is read here.
func mp4VideoFrames(path string) (int, error) {
	n, _, err := mp4VideoSamples(path)
	return n, err
}

// mp4VideoSamples is mp4VideoFrames with the video track's bytes too (the
// sum of its sample sizes; 0 when the track sizes its samples in a compact
// stz2 box, which our encoders do not write).
func mp4VideoSamples(path string) (frames int, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	frames, size, err = mp4VideoSamplesAt(f, fi.Size())
	if err != nil {
		return 0, 0, fmt.Errorf("count frames of %s: %w", path, err)
	}
	return frames, size, nil
}

// mp4VideoFramesAt is mp4VideoFrames on size bytes of r.
func mp4VideoFramesAt(r io.ReaderAt, size int64) (int, error) {
	n, _, err := mp4VideoSamplesAt(r, size)
	return n, err
}

// mp4VideoSamplesAt is mp4VideoSamples on size bytes of r.
func mp4VideoSamplesAt(r io.ReaderAt, size int64) (int, int64, error) {
	moov, err := findBox(r, 0, size, "moov")
	if err != nil {
		return 0, 0, err
	}
	for off := moov.body; off < moov.end; {
		b, err := readBoxHeader(r, off, moov.end)
		if err != nil {
			return 0, 0, err
		}
		if b.typ == "trak" {
			if n, bytes, ok, err := trakVideoSamples(r, b); err != nil {
				return 0, 0, err
			} else if ok {
				return n, bytes, nil
			}
		}
		off = b.end
	}
	return 0, 0, errors.New("no video track")
}

type box struct {
	typ       string
	body, end int64
}

func readBoxHeader(r io.ReaderAt, off, limit int64) (box, error) {
	var h [16]byte
	if _, err := r.ReadAt(h[:8], off); err != nil {
		return box{}, fmt.Errorf("box at %d: %w", off, err)
	}
	size := int64(binary.BigEndian.Uint32(h[:4]))
	b := box{typ: string(h[4:8]), body: off + 8}
	switch size {
	case 0:
		size = limit - off
	case 1:
		if _, err := r.ReadAt(h[8:16], off+8); err != nil {
			return box{}, err
		}
		size = int64(binary.BigEndian.Uint64(h[8:16]))
		b.body = off + 16
	}
	b.end = off + size
	if size < 8 || b.end > limit || b.body > b.end {
		return box{}, fmt.Errorf("box %q at %d has bad size %d", b.typ, off, size)
	}
	return b, nil
}

func findBox(r io.ReaderAt, off, end int64, typ string) (box, error) {
	for off < end {
		b, err := readBoxHeader(r, off, end)
		if err != nil {
			return box{}, err
		}
		if b.typ == typ {
			return b, nil
		}
		off = b.end
	}
	return box{}, fmt.Errorf("no %s box", typ)
}

// trakVideoSamples returns the sample count and bytes of trak if it is a
// video track.
func trakVideoSamples(r io.ReaderAt, trak box) (int, int64, bool, error) {
	mdia, err := findBox(r, trak.body, trak.end, "mdia")
	if err != nil {
		return 0, 0, false, err
	}
	hdlr, err := findBox(r, mdia.body, mdia.end, "hdlr")
	if err != nil {
		return 0, 0, false, err
	}
	var h [12]byte // version/flags, pre_defined, handler_type
	if _, err := r.ReadAt(h[:], hdlr.body); err != nil {
		return 0, 0, false, err
	}
	if string(h[8:12]) != "vide" {
		return 0, 0, false, nil
	}
	minf, err := findBox(r, mdia.body, mdia.end, "minf")
	if err != nil {
		return 0, 0, false, err
	}
	stbl, err := findBox(r, minf.body, minf.end, "stbl")
	if err != nil {
		return 0, 0, false, err
	}
	for _, typ := range []string{"stsz", "stz2"} {
		b, err := findBox(r, stbl.body, stbl.end, typ)
		if err != nil {
			continue
		}
		// stsz: version/flags(4) sample_size(4) sample_count(4);
		// stz2: version/flags(4) reserved(3) field_size(1) sample_count(4).
		var c [12]byte
		if _, err := r.ReadAt(c[:], b.body); err != nil {
			return 0, 0, false, err
		}
		n := int64(binary.BigEndian.Uint32(c[8:12]))
		if typ == "stz2" {
			return int(n), 0, true, nil
		}
		if each := int64(binary.BigEndian.Uint32(c[4:8])); each != 0 {
			return int(n), each * n, true, nil
		}
		if b.body+12+4*n > b.end {
			return 0, 0, false, fmt.Errorf("stsz holds %d entries in %d bytes", n, b.end-b.body-12)
		}
		var total int64
		buf := make([]byte, 4*min(n, 16384))
		for off, left := b.body+12, n; left > 0; {
			k := min(left, int64(len(buf)/4))
			if _, err := r.ReadAt(buf[:4*k], off); err != nil {
				return 0, 0, false, err
			}
			for i := range k {
				total += int64(binary.BigEndian.Uint32(buf[4*i:]))
			}
			off += 4 * k
			left -= k
		}
		return int(n), total, true, nil
	}
	return 0, 0, false, errors.New("video track has no sample size box")
}

// mp4VideoSampleEntry returns the type of the first sample entry of the
// first video track ("avc1", "hvc1", "av01", ...) and the body of its
// decoder configuration box (avcC, hvcC or av1C). It reads our own encoder
// and packager output only: progressive MP4s and fMP4 init segments.
func mp4VideoSampleEntry(path string) (string, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	entry, cfg, err := videoSampleEntryAt(f, fi.Size())
	if err != nil {
		return "", nil, fmt.Errorf("sample entry of %s: %w", path, err)
	}
	return entry, cfg, nil
}

func videoSampleEntryAt(r io.ReaderAt, size int64) (string, []byte, error) {
	moov, err := findBox(r, 0, size, "moov")
	if err != nil {
		return "", nil, err
	}
	for off := moov.body; off < moov.end; {
		trak, err := readBoxHeader(r, off, moov.end)
		if err != nil {
			return "", nil, err
		}
		off = trak.end
		if trak.typ != "trak" {
			continue
		}
		mdia, err := findBox(r, trak.body, trak.end, "mdia")
		if err != nil {
			return "", nil, err
		}
		hdlr, err := findBox(r, mdia.body, mdia.end, "hdlr")
		if err != nil {
			return "", nil, err
		}
		var h [12]byte
		if _, err := r.ReadAt(h[:], hdlr.body); err != nil {
			return "", nil, err
		}
		if string(h[8:12]) != "vide" {
			continue
		}
		minf, err := findBox(r, mdia.body, mdia.end, "minf")
		if err != nil {
			return "", nil, err
		}
		stbl, err := findBox(r, minf.body, minf.end, "stbl")
		if err != nil {
			return "", nil, err
		}
		stsd, err := findBox(r, stbl.body, stbl.end, "stsd")
		if err != nil {
			return "", nil, err
		}
		// stsd: version/flags(4) entry_count(4), then the entries.
		entry, err := readBoxHeader(r, stsd.body+8, stsd.end)
		if err != nil {
			return "", nil, err
		}
		// A visual sample entry has 78 bytes of fixed fields before its
		// child boxes.
		for c := entry.body + 78; c < entry.end; {
			b, err := readBoxHeader(r, c, entry.end)
			if err != nil {
				return "", nil, err
			}
			c = b.end
			switch b.typ {
			case "avcC", "hvcC", "av1C":
				n := min(b.end-b.body, 64)
				buf := make([]byte, n)
				if _, err := r.ReadAt(buf, b.body); err != nil {
					return "", nil, err
				}
				return entry.typ, buf, nil
			}
		}
		return entry.typ, nil, fmt.Errorf("sample entry %q has no decoder configuration", entry.typ)
	}
	return "", nil, errors.New("no video track")
}
