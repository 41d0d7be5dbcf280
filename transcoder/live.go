package transcoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gosty/gosty/transcoder/confine"
)

// Fragmented is an encoded chunk or an audio track remuxed (stream copy,
// nothing is encoded again) into fragmented MP4, split into the init
// segment and its fragments, for the live HLS view of a job that is still
// transcoding.
//
// The remux uses the same fragmented-MP4 shape as the DASH muxer that
// publishes the final segments (delay_moov, default-base-is-moof), so the
// init segment carries the same edit list (the B-frame delay) and the same
// codec configuration: every chunk of a job is encoded with identical
// settings, so the init of chunk 0 serves every chunk of a rendition.
type Fragmented struct {
	Init      []byte
	Timescale uint32 // of the (only) track
	Fragments []Fragment
}

// Fragment is one moof+mdat pair.
type Fragment struct {
	Start    int64 // base media decode time (tfdt), in Timescale ticks
	Duration int64 // sum of its sample durations, in ticks
	Data     []byte
}

// Media returns the fragments concatenated, their decode times moved by
// shift ticks: an encoded chunk starts at 0, and shifting it by the
// chunk's start in the job makes the chunks of a rendition one continuous
// timeline behind one init segment.
func (f *Fragmented) Media(shift int64) ([]byte, error) {
	var out bytes.Buffer
	for _, fr := range f.Fragments {
		b := bytes.Clone(fr.Data)
		if shift != 0 {
			if err := shiftTFDT(b, shift); err != nil {
				return nil, err
			}
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}

// Ticks converts seconds to the track's ticks.
func (f *Fragmented) Ticks(seconds float64) int64 {
	return int64(seconds*float64(f.Timescale) + 0.5)
}

// maxFragmentInput bounds what a remux may produce in memory.
const maxFragmentInput = 512 << 20

// Fragment remuxes one single-track MP4 (an encoded chunk's rendition or
// the job's audio) into fragmented MP4. fragSeconds 0 cuts a fragment at
// every keyframe (video); otherwise fragments are about that long (audio,
// where every frame is a keyframe). mediaSeconds sizes the deadline.
func (t *Transcoder) Fragment(ctx context.Context, in string, fragSeconds, mediaSeconds float64) (*Fragmented, error) {
	args := ffmpegBase()
	args = append(args, "-protocol_whitelist", "file", "-i", inputURL(in), "-map", "0:0", "-c", "copy", "-map_metadata", "-1")
	flags := "+delay_moov+default_base_moof"
	if fragSeconds > 0 {
		args = append(args, "-frag_duration", strconv.FormatInt(int64(fragSeconds*1e6), 10))
	} else {
		flags += "+frag_keyframe"
	}
	args = append(args, "-movflags", flags, "-f", "mp4", "pipe:1")
	out := &cappedBuffer{max: maxFragmentInput}
	if err := t.run(ctx, copyDeadline(mediaSeconds), t.ffmpeg, args, out, confine.Policy{Read: []string{in}}); err != nil {
		return nil, fmt.Errorf("fragment %s: %w", in, err)
	}
	if out.overflow {
		return nil, fmt.Errorf("fragment %s: more than %d bytes", in, maxFragmentInput)
	}
	f, err := splitFragmented(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("fragment %s: %w", in, err)
	}
	return f, nil
}

type mp4Box struct {
	typ        string
	start, end int // whole box
	body       int // offset of the body
}

// boxesIn lists the boxes in b[off:end].
func boxesIn(b []byte, off, end int) ([]mp4Box, error) {
	var out []mp4Box
	for off < end {
		if end-off < 8 {
			return nil, errors.New("truncated box header")
		}
		size := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := 8
		switch size {
		case 1:
			if end-off < 16 {
				return nil, errors.New("truncated box header")
			}
			s := binary.BigEndian.Uint64(b[off+8:])
			if s > uint64(end-off) {
				return nil, fmt.Errorf("box %q overruns its parent", typ)
			}
			size, hdr = int(s), 16
		case 0:
			size = end - off
		}
		if size < hdr || size > end-off {
			return nil, fmt.Errorf("box %q has size %d", typ, size)
		}
		out = append(out, mp4Box{typ: typ, start: off, end: off + size, body: off + hdr})
		off += size
	}
	return out, nil
}

func child(b []byte, parent mp4Box, typ string) (mp4Box, bool) {
	kids, err := boxesIn(b, parent.body, parent.end)
	if err != nil {
		return mp4Box{}, false
	}
	for _, k := range kids {
		if k.typ == typ {
			return k, true
		}
	}
	return mp4Box{}, false
}

func boxPath(b []byte, parent mp4Box, typs ...string) (mp4Box, bool) {
	cur := parent
	for _, t := range typs {
		var ok bool
		if cur, ok = child(b, cur, t); !ok {
			return mp4Box{}, false
		}
	}
	return cur, true
}

// splitFragmented cuts a fragmented MP4 into its init (everything before
// the first moof) and its moof+mdat pairs; an mfra index at the end is
// dropped (it points into the whole file).
func splitFragmented(b []byte) (*Fragmented, error) {
	top, err := boxesIn(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	f := &Fragmented{}
	var trex mp4Box
	first := -1
	for i, bx := range top {
		if bx.typ == "moof" {
			first = i
			break
		}
		if bx.typ == "moov" {
			mdhd, ok := boxPath(b, bx, "trak", "mdia", "mdhd")
			if !ok || mdhd.end-mdhd.body < 24 {
				return nil, errors.New("no mdhd")
			}
			if b[mdhd.body] == 1 {
				if mdhd.end-mdhd.body < 36 {
					return nil, errors.New("short mdhd")
				}
				f.Timescale = binary.BigEndian.Uint32(b[mdhd.body+20:])
			} else {
				f.Timescale = binary.BigEndian.Uint32(b[mdhd.body+12:])
			}
			trex, _ = boxPath(b, bx, "mvex", "trex")
		}
	}
	if first < 0 || f.Timescale == 0 {
		return nil, errors.New("not a fragmented MP4 with one timed track")
	}
	f.Init = bytes.Clone(b[:top[first].start])
	var defDur uint32
	if trex.end-trex.body >= 16 {
		defDur = binary.BigEndian.Uint32(b[trex.body+12:])
	}
	for i := first; i < len(top); i++ {
		if top[i].typ != "moof" {
			continue
		}
		if i+1 >= len(top) || top[i+1].typ != "mdat" {
			return nil, errors.New("moof without mdat")
		}
		moof := top[i]
		start, dur, err := fragmentTiming(b, moof, defDur)
		if err != nil {
			return nil, err
		}
		f.Fragments = append(f.Fragments, Fragment{Start: start, Duration: dur, Data: bytes.Clone(b[moof.start:top[i+1].end])})
	}
	return f, nil
}

// fragmentTiming reads a moof's tfdt and adds up its trun sample durations.
func fragmentTiming(b []byte, moof mp4Box, defDur uint32) (start, dur int64, err error) {
	traf, ok := child(b, moof, "traf")
	if !ok {
		return 0, 0, errors.New("moof without traf")
	}
	kids, err := boxesIn(b, traf.body, traf.end)
	if err != nil {
		return 0, 0, err
	}
	for _, k := range kids {
		body := b[k.body:k.end]
		switch k.typ {
		case "tfhd":
			if len(body) < 8 {
				return 0, 0, errors.New("short tfhd")
			}
			flags := binary.BigEndian.Uint32(body) & 0xffffff
			off := 8
			if flags&0x1 != 0 {
				off += 8
			}
			if flags&0x2 != 0 {
				off += 4
			}
			if flags&0x8 != 0 {
				if len(body) < off+4 {
					return 0, 0, errors.New("short tfhd")
				}
				defDur = binary.BigEndian.Uint32(body[off:])
			}
		case "tfdt":
			if len(body) < 8 {
				return 0, 0, errors.New("short tfdt")
			}
			if body[0] == 1 {
				if len(body) < 12 {
					return 0, 0, errors.New("short tfdt")
				}
				start = int64(binary.BigEndian.Uint64(body[4:]))
			} else {
				start = int64(binary.BigEndian.Uint32(body[4:]))
			}
		case "trun":
			if len(body) < 8 {
				return 0, 0, errors.New("short trun")
			}
			flags := binary.BigEndian.Uint32(body) & 0xffffff
			n := int(binary.BigEndian.Uint32(body[4:]))
			off := 8
			if flags&0x1 != 0 {
				off += 4
			}
			if flags&0x4 != 0 {
				off += 4
			}
			per := 0
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					per += 4
				}
			}
			if n < 0 || len(body) < off+n*per {
				return 0, 0, errors.New("short trun")
			}
			for i := range n {
				if flags&0x100 != 0 {
					dur += int64(binary.BigEndian.Uint32(body[off+i*per:]))
				} else {
					dur += int64(defDur)
				}
			}
		}
	}
	return start, dur, nil
}

// shiftTFDT adds shift to the base media decode time of every traf in one
// fragment (moof+mdat), in place. A version 0 tfdt that would overflow is
// an error (ffmpeg writes version 1).
func shiftTFDT(b []byte, shift int64) error {
	top, err := boxesIn(b, 0, len(b))
	if err != nil {
		return err
	}
	for _, moof := range top {
		if moof.typ != "moof" {
			continue
		}
		trafs, err := boxesIn(b, moof.body, moof.end)
		if err != nil {
			return err
		}
		for _, traf := range trafs {
			if traf.typ != "traf" {
				continue
			}
			tfdt, ok := child(b, traf, "tfdt")
			if !ok {
				return errors.New("traf without tfdt")
			}
			body := b[tfdt.body:tfdt.end]
			switch {
			case len(body) >= 12 && body[0] == 1:
				v := int64(binary.BigEndian.Uint64(body[4:])) + shift
				if v < 0 {
					return errors.New("tfdt shifted below zero")
				}
				binary.BigEndian.PutUint64(body[4:], uint64(v))
			case len(body) >= 8 && body[0] == 0:
				v := int64(binary.BigEndian.Uint32(body[4:])) + shift
				if v < 0 || v > 0xffffffff {
					return errors.New("tfdt out of range for version 0")
				}
				binary.BigEndian.PutUint32(body[4:], uint32(v))
			default:
				return errors.New("malformed tfdt")
			}
		}
	}
	return nil
}

// Codec is the RFC 6381 codec string of the init segment's track as HLS
// and DASH state it (avc1.PPCCLL from the avcC box, the way ffmpeg's DASH
// muxer writes it; mp4a.40.2 for the AAC-LC audio gosty encodes), or "".
func (f *Fragmented) Codec() string {
	b := f.Init
	top, err := boxesIn(b, 0, len(b))
	if err != nil {
		return ""
	}
	for _, moov := range top {
		if moov.typ != "moov" {
			continue
		}
		stsd, ok := boxPath(b, moov, "trak", "mdia", "minf", "stbl", "stsd")
		if !ok || stsd.end-stsd.body < 16 {
			return ""
		}
		entries, err := boxesIn(b, stsd.body+8, stsd.end)
		if err != nil || len(entries) == 0 {
			return ""
		}
		e := entries[0]
		switch e.typ {
		case "avc1", "avc3":
			const visualEntry = 78
			if e.end-e.body < visualEntry {
				return ""
			}
			kids, err := boxesIn(b, e.body+visualEntry, e.end)
			if err != nil {
				return ""
			}
			for _, k := range kids {
				if k.typ == "avcC" && k.end-k.body >= 4 {
					return fmt.Sprintf("%s.%02x%02x%02x", e.typ, b[k.body+1], b[k.body+2], b[k.body+3])
				}
			}
		case "mp4a":
			return "mp4a.40.2"
		}
	}
	return ""
}

// LiveSegment is one segment of a live media playlist.
type LiveSegment struct {
	Duration float64 // seconds
	URI      string
}

// EventPlaylist writes an HLS media playlist of type EVENT over fMP4
// segments behind one init segment: a player may start while it grows, and
// segments are only ever appended. ended adds EXT-X-ENDLIST. target is the
// longest segment the playlist will ever list, so that TARGETDURATION never
// changes while it grows.
func EventPlaylist(mapURI string, target float64, segs []LiveSegment, ended bool) []byte {
	td := int(math.Ceil(target - 1e-3))
	for _, s := range segs {
		td = max(td, int(math.Round(s.Duration)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", max(td, 1))
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", mapURI)
	for _, s := range segs {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", s.Duration, s.URI)
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}
